"""Flex Template entry point: ``newswatch run`` with the template's parameters.

The template launcher calls ``python main.py --name=value ...`` with the parameters of
metadata.json and Dataflow's own options (--runner, --project, --region, --temp_location,
--sdk_container_image, ...). Template parameter names cannot contain "-", so the few
newswatch options with one are spelled with "_" in metadata.json and renamed here;
everything else passes through to the command line unchanged (Beam options included).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from newswatch.pipelines.cli import main

# Template parameter name -> `newswatch run` option.
RENAMED = {"--lock_ttl": "--lock-ttl", "--log_format": "--log-format"}
# The config baked into the image beside this file, unless the `config` parameter names one.
DEFAULTS = {
    "--config": str(Path(__file__).with_name("config.yaml")),
    "--log-format": "json",
}


def newswatch_args(argv: Sequence[str]) -> list[str]:
    """The `newswatch run` command line for the launcher's arguments."""
    args = ["run"]
    for arg in argv:
        name, sep, value = arg.partition("=")
        args.append(RENAMED.get(name, name) + sep + value)
    for option, value in DEFAULTS.items():
        if not any(a == option or a.startswith(option + "=") for a in args):
            args.append(f"{option}={value}")
    return args


if __name__ == "__main__":
    sys.exit(main(newswatch_args(sys.argv[1:])))
