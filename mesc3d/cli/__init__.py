"""The ``mesc3d`` command: one sub-command per module in this package.

Every sub-command module exposes ``main(argv: list[str] | None = None) -> int`` and builds its own
argparse parser, so tests call ``mesc3d.cli.<module>.main([...])`` directly and each Snakemake
rule's shell line reads as the precise contract of one small program.  Modules are imported
lazily: ``mesc3d synth`` does not pay for importing open_clip.
"""

from __future__ import annotations

import importlib
import sys

# command name -> (module, one-line help).  Order is the order of the pipeline.
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("mesc3d.cli.synth", "generate the procedural ShapeNet/Pix3D-style benchmark"),
    "download": ("mesc3d.cli.download", "download (resumable, checksummed) and safely extract an archive"),
    "prepare": ("mesc3d.cli.prepare", "sample fixed 2048-point GT clouds per split into one file per split"),
    "contact-sheet": ("mesc3d.cli.contact_sheet", "one render per class in a PNG grid"),
    "resolve-config": ("mesc3d.cli.resolve_config", "resolve one experiments-sheet row into a run YAML"),
    "pretrain-pointmae": ("mesc3d.cli.pretrain_pointmae", "masked-autoencoder pretraining of Point-MAE"),
    "cache-features": ("mesc3d.cli.cache_features", "encode GT clouds with the frozen point encoder into HDF5"),
    "pretrain-prompt": ("mesc3d.cli.pretrain_prompt", "stage 1: 3DSPL learnable prompts (contrastive)"),
    "train": ("mesc3d.cli.train", "stage 2: reconstruction training with exact resume"),
    "evaluate": ("mesc3d.cli.evaluate", "per-shape/per-category CD-L1, CD-L2, F-score on the test split"),
    "zeroshot": ("mesc3d.cli.zeroshot", "evaluate on the unseen Pix3D classes with and without the prior"),
    "reconstruct": ("mesc3d.cli.reconstruct", "segment the named object in a photo and write its point cloud"),
    "baseline": ("mesc3d.cli.baseline", "retrieval and class-mean baselines"),
    "complexity": ("mesc3d.cli.complexity", "parameter counts, FLOPs and latency (Tab. 8/9)"),
    "tables": ("mesc3d.cli.tables", "CSV/LaTeX/markdown tables from the result CSVs"),
    "compute-cost": ("mesc3d.cli.compute_cost", "aggregate Snakemake benchmark files into a cost table"),
}


def _usage() -> str:
    width = max(len(c) for c in COMMANDS)
    lines = ["usage: mesc3d <command> [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run 'mesc3d <command> --help' for the options of one command."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if argv[0] == "--version":
        from mesc3d import __version__

        print(__version__)
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"mesc3d: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    try:
        return int(module.main(rest) or 0)
    except UserFacingError as err:  # one clear line, no traceback, for bad input
        print(shorten(f"mesc3d {name}: error: {err}"), file=sys.stderr)
        return 1


from mesc3d.errors import UserFacingError, shorten  # noqa: E402  (kept light: no torch import)
