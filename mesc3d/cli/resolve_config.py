"""``mesc3d resolve-config``: one experiments-sheet row -> a complete, validated run YAML.

Inputs : ``--json`` the run config as a JSON object (the workflow's ``base`` merged with the row's
         overrides; the Snakemake rule passes it as a param so that only an edited row reruns), or
         ``--config FILE`` plus ``--set key=value`` overrides.
Output : ``--out results/configs/{stage}/{exp}.yaml`` — every key explicit (defaults and preset applied),
         written atomically.  Training and evaluation take only this file as their config.
Rule   : ``resolve_config`` in workflow/rules/data.smk (its --json is the stage's slice, mesc3d/config_slices.py).
"""

from __future__ import annotations

import argparse
import json

from mesc3d.config import deep_merge, dump_yaml, from_dict, load_yaml, parse_overrides
from mesc3d.errors import ConfigError
from mesc3d.io import write_text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mesc3d resolve-config", description=__doc__.splitlines()[0])
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--json", help="run config as a JSON object")
    src.add_argument("--config", help="run config YAML")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override (repeatable)")
    parser.add_argument("--out", required=True, help="resolved YAML to write")
    args = parser.parse_args(argv)

    if args.json is not None:
        try:
            data = json.loads(args.json)
        except json.JSONDecodeError as err:
            raise ConfigError(f"--json is not valid JSON: {err}") from None
        source = "--json"
    else:
        data, source = load_yaml(args.config), args.config
    data = deep_merge(data, parse_overrides(args.set))
    cfg = from_dict(data, source=source)
    text = dump_yaml(cfg)
    if "preset" not in data:  # a stage slice: its keys are already resolved values (preset applied by the
        # workflow); naming the default preset here would mislabel them.  Loading the file gives the same config.
        text = "".join(line for line in text.splitlines(keepends=True) if not line.startswith("preset:"))
        text = "# resolved values of the keys this stage reads (no preset line: they are already resolved)\n" + text
    write_text(args.out, text)
    print(f"wrote {args.out} ({cfg.name}, preset {cfg.preset if 'preset' in data else 'already applied'})")
    return 0
