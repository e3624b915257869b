"""Small helpers shared by the CLI modules: common arguments (logging set-up: ``mesc3d.engine.stage``)."""

from __future__ import annotations

import argparse

from mesc3d.engine.stage import pin_threads, setup_logging  # noqa: F401 (the CLIs import them from here)


def add_config_args(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("--config", required=required, help="resolved run YAML (results/configs/{stage}/{exp}.yaml)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, e.g. train.epochs=3 (repeatable)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
