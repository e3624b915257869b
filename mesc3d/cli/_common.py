"""Small helpers shared by the CLI modules (logging set-up, common arguments)."""

from __future__ import annotations

import argparse
import logging
import os
import sys


def setup_logging(verbose: bool = False) -> None:
    rank = os.environ.get("RANK")
    prefix = f"[rank {rank}] " if rank is not None and os.environ.get("WORLD_SIZE", "1") != "1" else ""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format=f"%(asctime)s {prefix}%(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
        force=True,
    )
    pin_threads()


def pin_threads() -> None:
    """torch intra-op threads = ``OMP_NUM_THREADS`` (Snakemake sets it to the rule's ``threads``), so a
    job's floating-point results do not depend on how many cores the node happens to have."""
    n = os.environ.get("OMP_NUM_THREADS", "")
    if n.isdigit() and int(n) > 0:
        import torch

        torch.set_num_threads(int(n))


def add_config_args(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("--config", required=required, help="resolved run YAML (results/configs/{stage}/{exp}.yaml)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, e.g. train.epochs=3 (repeatable)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
