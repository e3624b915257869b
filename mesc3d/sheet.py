"""The experiments sheet (config/experiments.tsv): parsing, validation, run configs, run selection.

One row = one run: ``exp kind tables label [same_as] [overrides]`` (tab-separated).  ``kind`` is one of
``mesc3d.registries.RUN_KINDS``; ``tables`` lists ids of ``mesc3d.table_specs.TABLES``; ``overrides``
are ``;``-separated ``key.path=value`` items applied on top of the workflow config's ``base``.

Everything the workflow derives from the sheet lives here (``workflow/rules/common.smk`` only maps
wildcards to paths through it), so it is unit-tested without Snakemake (tests/test_sheet.py).  Every
problem is one ``ConfigError`` line naming the sheet file and the row or column, raised when the
sheet is loaded, before any job is planned.
"""

from __future__ import annotations

import difflib
import json
import shlex
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from mesc3d.config import MissingWeightsError, coerce_to_schema, deep_merge, from_dict, parse_overrides
from mesc3d.errors import ConfigError
from mesc3d.registries import RUN_KINDS
from mesc3d.table_specs import (CLAIMS, MANIFEST, RESULT_FILES, SEED_SEP, TABLES, check_table_ids, replica,
                                 split_replica)

REQUIRED = ("exp", "kind", "tables", "label")
OPTIONAL = ("same_as", "overrides")
COLUMNS = REQUIRED + OPTIONAL
SCHEMA = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "experiments.schema.yaml"
CONFIG_SCHEMA = SCHEMA.with_name("config.schema.yaml")
SHARED = ("data.", "model.point_mae.")  # keys every run shares: a row may not override them
DEFAULT_LOCK = "config/checksums.lock.json"
_QUOTE = 200  # at most this many characters of a user's value in an error line


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _QUOTE else text[:_QUOTE] + "...'"


def _header(path: Path) -> list[str]:
    try:
        with open(path, encoding="utf-8") as fh:
            first = fh.readline()
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not a readable tab-separated sheet ({err})") from None
    return first.rstrip("\r\n").split("\t") if first.strip() else []


def check_header(path: str | Path, names: list[str]) -> None:
    """Duplicated, unknown (typo) or missing columns -> one line naming the sheet and the column."""
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"{path}: column {_short(name)} appears {names.count(name)} times in the header; "
                              "each column once (a second one would be silently dropped)")
    for name in names:
        if name not in COLUMNS:
            close = difflib.get_close_matches(name, COLUMNS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{path}: unknown column {_short(name)}{hint}; columns: "
                              f"{' '.join(REQUIRED)} [same_as] [overrides]")
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise ConfigError(f"{path}: missing columns {missing}; expected tab-separated {list(REQUIRED)}")


@lru_cache(maxsize=1)
def _schema() -> dict:
    import yaml

    return yaml.safe_load(SCHEMA.read_text())


def check_row(path: str | Path, row: Mapping[str, str]) -> None:
    """One row against workflow/schemas/experiments.schema.yaml and the run kinds: one line on error."""
    import jsonschema

    exp = row.get("exp", "")
    where = f"{path}: row {_short(exp)}" if exp else f"{path}: a row"
    errors = sorted(jsonschema.Draft202012Validator(_schema()).iter_errors(dict(row)), key=lambda e: list(e.path))
    if errors:
        err = errors[0]
        col = err.path[0] if err.path else (err.validator_value[0] if err.validator == "required" else "?")
        value = row.get(col, "") if isinstance(col, str) else ""
        problem = f"value {_short(value)} does not match {err.validator_value!r}" if err.validator == "pattern" \
            else err.message[:_QUOTE]
        raise ConfigError(f"{where}, column {col!r}: {problem}")
    if SEED_SEP in exp:
        raise ConfigError(f"{where}, column 'exp': {SEED_SEP!r} is reserved for seed replicas "
                          f"(run {{exp}}{SEED_SEP}{{k}} = seed k of {{exp}}); rename the run")
    if row["kind"] not in RUN_KINDS:
        raise ConfigError(f"{where}, column 'kind': {_short(row['kind'])} is not a run kind; "
                          f"known: {list(RUN_KINDS)} (mesc3d/registries.py)")


def load_sheet(path: str | Path) -> pd.DataFrame:
    """The experiments sheet, indexed by ``exp``, every row validated (bad sheet -> ``ConfigError``)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: experiments sheet does not exist")
    check_header(path, _header(path))
    try:
        df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, comment=None)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not a readable tab-separated sheet ({str(err)[:_QUOTE]})") from None
    if df["exp"].duplicated().any():
        raise ConfigError(f"{path}: duplicate exp names {sorted(df.loc[df['exp'].duplicated(), 'exp'])}")
    for col in OPTIONAL:
        if col not in df.columns:
            df[col] = ""
    for _, row in df.iterrows():
        check_row(path, {k: v for k, v in row.items() if k in REQUIRED or v})
    df["label"] = [lab or exp for lab, exp in zip(df["label"], df["exp"])]
    return df.set_index("exp", drop=False)


def normalise_config(config: dict[str, Any]) -> dict[str, Any]:
    """The workflow config, in place, before it is validated: nested ``--config`` values that Snakemake
    passes as strings (``'3'``, ``'false'``, ``'1e-3'``) read as the schema's types, and with
    ``data.source: meshes`` the folder of meshes (``meshes.root``) is the run's data root."""
    import yaml

    coerce_to_schema(config, yaml.safe_load(CONFIG_SCHEMA.read_text()))
    data = config.get("base", {}).get("data", {})
    if data.get("source") == "meshes":
        data["root"] = (config.get("meshes") or {}).get("root", data.get("root", ""))
    return config


class Sheet:
    """The sheet together with the workflow config it is resolved against (``config['base']``...)."""

    def __init__(self, path: str | Path, config: Mapping[str, Any]):
        self.path, self.config = str(path), config
        self.df = load_sheet(path)
        self._configs: dict[str, Any] = {}

    # ---- rows ---------------------------------------------------------------------------------
    def __contains__(self, exp: str) -> bool:
        return exp in self.df.index

    def kind(self, exp: str) -> str:
        return str(self.df.loc[split_replica(exp)[0], "kind"])

    def tags(self, exp: str) -> list[str]:
        return [t for t in self.df.loc[exp, "tables"].split(",") if t]

    def target(self, exp: str) -> str:
        """The run whose results and config a row stands for: ``same_as`` for an alias, else itself
        (a seed replica ``{alias}__s{k}``: ``{same_as}__s{k}``)."""
        row, k = split_replica(exp)
        return replica(str(self.df.loc[row, "same_as"]), k) if RUN_KINDS[self.kind(row)].needs_same_as else exp

    def exps(self, kind=None, table: str | None = None) -> list[str]:
        """Run names of a kind (or kinds) and/or listing a table, in sheet order."""
        kinds = None if kind is None else ([kind] if isinstance(kind, str) else list(kind))
        return [e for e in self.df.index
                if (kinds is None or self.kind(e) in kinds) and (table is None or table in self.tags(e))]

    def names(self, kinds) -> str:
        """A wildcard constraint matching exactly the runs of ``kinds``."""
        return "|".join(self.exps(kind=kinds)) or "NO_SUCH_RUN"

    # ---- run configs --------------------------------------------------------------------------
    def row_overrides(self, exp: str) -> dict[str, Any]:
        """The row's overrides as a nested dict (data.* and model.point_mae.* are shared: refused)."""
        items = [s for s in self.df.loc[exp, "overrides"].split(";") if s.strip()]
        for item in items:
            if item.startswith(SHARED):
                raise ConfigError(f"{self.path}: row {exp!r} overrides {item.split('=')[0]!r}; data and "
                                  "Point-MAE settings are shared by every run: change them in the workflow config")
        return parse_overrides(items)

    def run_config_dict(self, exp: str) -> dict[str, Any]:
        """Resolved run config (as a dict) of one row: base + row overrides + name (``_base``: the base).
        Seed replica ``{exp}__s{k}`` (also ``_base__s{k}``): the row's config with ``seed`` + k."""
        row, k = split_replica(exp)
        if row == "_base":
            out = deep_merge(self.config["base"], {"name": exp})
        else:
            out = deep_merge(deep_merge(self.config["base"], self.row_overrides(row)), {"name": exp})
        if k:
            out = deep_merge(out, {"seed": int(out.get("seed", 0) or 0) + k})
        return out

    def run_config(self, exp: str):
        if exp not in self._configs:
            self._configs[exp] = from_dict(self.run_config_dict(exp), source=f"{self.path}:{exp}")
        return self._configs[exp]

    def run_weights(self, exp: str) -> list[str]:
        """Local weights files one run's jobs load: the CLIP file of its text tower and Tab. 4 image tower."""
        known = weights_by_path(self.config)

        def is_file(value: str) -> bool:  # "" and open_clip tags such as `openai` are not files
            return bool(value) and (value in known or len(Path(value).parts) > 1
                                    or value.endswith((".pt", ".pth", ".bin")))

        cfg = self.run_config(exp)
        files = []
        if cfg.prompt.text_backend == "open_clip" and is_file(cfg.prompt.pretrained):
            files.append(cfg.prompt.pretrained)
        if cfg.model.image_encoder.startswith("clip_"):
            clip = cfg.model.image_weights or cfg.prompt.pretrained
            if is_file(clip) and clip not in files:
                files.append(clip)
        return files

    def uses_prior(self, exp: str) -> bool:
        return self.run_config(exp).uses_prior

    def prompt_key(self, exp: str) -> str:
        """Stage-1 runs are shared: rows that do not touch prompt.* use the `default` prompts.  A seed
        replica re-draws stage 1 too: ``{key}__s{k}`` (``default__s{k}``: the base with seed + k)."""
        row, k = split_replica(exp)
        return replica(row if "prompt" in self.row_overrides(row) else "default", k)

    # ---- tables -------------------------------------------------------------------------------
    def _config_key(self, key: str) -> str:
        node: Any = self.config
        for part in key.split("."):
            node = node.get(part, "") if isinstance(node, Mapping) else ""
        return str(node or "")

    def table_seeds(self, table: str) -> int:
        """Seeds per run of a table: config ``table_seeds.<id>``, else ``TableSpec.seeds``."""
        return int((self.config.get("table_seeds") or {}).get(table, TABLES[table].seeds))

    def table_rows(self, table: str) -> list[str]:
        """The rows a table takes (seed 0): the rows listing it, the run its config key names, or the
        arms of the claims (their targets, each once)."""
        spec = TABLES[table]
        if spec.runs == "sheet":
            return self.exps(table=table)
        if spec.runs == "claims":
            out: list[str] = []
            for _, a, b in self.claims():
                out += [r for r in (a, b) if r not in out]
            return out
        run = self._config_key(spec.runs)
        return [run] if run else []

    def seed_runs(self, table: str) -> list[str]:
        """The table's rows, every row followed by its seed replicas (``{exp}__s{k}``)."""
        n = self.table_seeds(table)
        return [replica(e, k) for e in self.table_rows(table) for k in range(n)]

    def table_runs(self, table: str) -> list[str]:
        """What ``mesc3d tables`` is given for a table: its runs with their seed replicas; for the
        claims table one ``CLAIM:RUN_A:RUN_B:N_SEEDS`` item per claim."""
        if TABLES[table].runs == "claims":
            n = self.table_seeds(table)
            return [f"{c.id}:{a}:{b}:{n}" for c, a, b in self.claims()]
        return self.seed_runs(table)

    def claims(self) -> list[tuple[Any, str, str]]:
        """(claim, run a, run b) of every claim of ``mesc3d.table_specs.CLAIMS`` whose arms are runs of
        the sheet (arms resolved: an alias -> its same_as run; zero-shot arms -> the config's pair)."""
        out = []
        for c in CLAIMS:
            arms = [self._config_key(x) if c.source == "zeroshot" else x for x in (c.arm_a, c.arm_b)]
            if all(a in self.df.index for a in arms):
                out.append((c, *(self.target(a) for a in arms)))
        return out

    def result_files(self, exp: str, reads) -> list[str]:
        """Result files (relative to the results root) of one run that a table reading ``reads`` needs:
        the run's manifest, then each file its kind has (an alias: its target's, `eval` its own copy)."""
        files = [MANIFEST.format(exp=exp)]
        target = self.target(exp)
        for kind in reads:
            template, who = RESULT_FILES[kind]
            if who == "all":
                files.append(template.format(exp=exp))
            elif who == "target" or RUN_KINDS[self.kind(target)].trains:
                files.append(template.format(exp=target))
        return files

    def claims_files(self) -> list[str]:
        """Inputs of the claims table: per seed, the manifests and per-shape results of both arms
        (zero-shot claims: the with-prior run's per-shape files with and without the prior)."""
        n, files = self.table_seeds("claims"), []
        for c, a, b in self.claims():
            for k in range(n):
                ra, rb = replica(a, k), replica(b, k)
                if c.source == "zeroshot":
                    new = self.result_files(ra, ("zeroshot_shapes", "zeroshot_shapes_without"))
                    new.append(MANIFEST.format(exp=rb))
                else:
                    new = self.result_files(ra, ("eval_shapes",)) + self.result_files(rb, ("eval_shapes",))
                files += [f for f in new if f not in files]
        return files

    def table_inputs(self, table: str, root: str = "results") -> list[str]:
        if TABLES[table].runs == "claims":
            return [f"{root}/{f}" for f in self.claims_files()]
        return [f"{root}/{f}" for e in self.table_runs(table) for f in self.result_files(e, TABLES[table].reads)]

    def table_arg(self, table: str) -> str:
        """``mesc3d tables --table`` value: ``ID=run,run,...`` (a rerun trigger: the table's run list,
        seed replicas included; the claims table: its claim items, see ``table_runs``)."""
        return f"{table}={','.join(self.table_runs(table))}"

    def curve_runs(self, table: str) -> list[list]:
        """[label, [run of seed 0, seed 1, ...]] of every trained row of a table (targets, each once)."""
        out, seen = [], set()
        n = self.table_seeds(table)
        for row in self.table_rows(table):
            t = self.target(row)
            if RUN_KINDS[self.kind(t)].trains and t not in seen:
                seen.add(t)
                out.append([str(self.df.loc[row, "label"]), [replica(t, k) for k in range(n)]])
        return out

    def curve_files(self, table: str, root: str = "results") -> list[str]:
        """The training logs (metrics.csv) the curves of a table read, every seed."""
        return [f"{root}/train/{r}/metrics.csv" for _, runs in self.curve_runs(table) for r in runs]

    def manifest(self, exp: str) -> dict[str, Any]:
        """What the tables know of a run besides its result CSVs (results/manifests/{exp}.json)."""
        base, k = split_replica(exp)
        row, target = self.df.loc[base], self.target(exp)
        cfg = self.run_config(target)
        same_as = replica(str(row["same_as"]), k) if row["same_as"] else ""
        return {"exp": exp, "label": str(row["label"]), "kind": str(row["kind"]), "same_as": same_as,
                "loss": cfg.train.loss, "seed": cfg.seed, "uses_prior": cfg.uses_prior,
                "categories": list(cfg.data.categories), "unseen_categories": list(cfg.data.unseen_categories)}

    def manifest_json(self, exp: str) -> str:
        return json.dumps(self.manifest(exp), sort_keys=True, indent=1) + "\n"

    # ---- validation ---------------------------------------------------------------------------
    def check(self, selected_tables=()) -> None:
        """Every row's config, aliases, table ids, config-keyed tables and the zero-shot pair."""
        unrunnable = {}  # rows whose required weights key is empty: fine while no selected table uses them
        for exp in self.df.index:
            kind = RUN_KINDS[self.kind(exp)]
            if kind.needs_same_as:
                target = self.df.loc[exp, "same_as"]
                if target not in self.df.index or RUN_KINDS[self.kind(target)].needs_same_as:
                    raise ConfigError(f"{self.path}: alias {exp!r} needs same_as = a non-alias run")
            elif self.df.loc[exp, "same_as"]:
                raise ConfigError(f"{self.path}: row {exp!r}, column 'same_as': only alias rows name a run there")
            if not kind.overrides and self.df.loc[exp, "overrides"].strip():
                raise ConfigError(f"{self.path}: row {exp!r}, column 'overrides': an alias has exactly the "
                                  "config of its same_as run; remove its overrides")
            if kind.overrides:
                try:
                    self.run_config(exp)
                except MissingWeightsError as err:
                    unrunnable[exp] = err
        check_table_ids(list(selected_tables), "config key `tables`")
        seeds = self.config.get("table_seeds") or {}
        check_table_ids(list(seeds), "config key `table_seeds`")
        for t, n in seeds.items():
            if not isinstance(n, int) or isinstance(n, bool) or n < 1:
                raise ConfigError(f"config key `table_seeds.{t}`: {_short(n)} is not a number of seeds >= 1")
        for exp in self.df.index:
            target = self.df.loc[exp, "same_as"] if RUN_KINDS[self.kind(exp)].needs_same_as else exp
            if target in unrunnable and set(self.tags(exp)) & set(selected_tables):
                raise unrunnable[target]
        for exp in self.df.index:
            where = f"{self.path}: row {exp!r}"
            check_table_ids(self.tags(exp), where)
            keyed = [t for t in self.tags(exp) if TABLES[t].runs != "sheet"]
            if keyed:
                t = keyed[0]
                whose = ("the arms of mesc3d.table_specs.CLAIMS" if TABLES[t].runs == "claims"
                         else f"the config key {TABLES[t].runs}")
                raise ValueError(f"{self.path}: rows {[exp]} list table {t}; its runs are {whose}, "
                                 f"remove `{t}` from the row")
        zs = self.config.get("zeroshot") or {}
        for key in ("with_prior", "without_prior"):
            exp = zs.get(key, "")
            if exp not in self.df.index or not RUN_KINDS[self.kind(exp)].trains:
                raise ConfigError(f"zeroshot.{key}: {exp!r} is not a trained (kind=mesc3d) row of {self.path}")
            if self.uses_prior(exp) != (key == "with_prior"):
                raise ConfigError(f"zeroshot.{key}: run {exp!r} {'does not use' if key == 'with_prior' else 'uses'} "
                                  "the text prior (model.prior_injection)")


# ---------------------------------------------------------------------- downloads and weights files
def fetch_args(entry: Mapping[str, Any], local_key: str = "local_archive") -> list[str]:
    """``mesc3d download`` arguments of one config `downloads` / `weights` entry: local copy, URLs,
    checksum (or the lock file that records a first download's), size, top folder."""
    args: list[str] = []
    if entry.get(local_key):
        args += ["--local-archive", entry[local_key]]
    for url in [entry.get("url")] + list(entry.get("alternates") or []):
        if url:
            args += ["--url", url]
    args += ["--sha256", entry.get("sha256") or "null"]
    if entry.get("size"):
        args += ["--size", str(entry["size"])]
    if not entry.get("sha256"):
        args += ["--lock", entry.get("lock") or DEFAULT_LOCK]
    if entry.get("top_dir"):
        args += ["--top-dir", entry["top_dir"]]
    return args


def download_args(config: Mapping[str, Any], name: str) -> str:
    """Shell arguments of the `download` rule for the archive `downloads.<name>`."""
    return " ".join(shlex.quote(a) for a in fetch_args(config["downloads"][name]))


def weights_by_path(config: Mapping[str, Any]) -> dict[str, str]:
    """Config `weights`: output path -> entry name."""
    return {w["out"]: name for name, w in (config.get("weights") or {}).items()}


def weights_args(config: Mapping[str, Any], path: str) -> str:
    """Shell arguments of the `download_weights` rule for the file `path` (a `weights.<name>.out`)."""
    name = weights_by_path(config)[path]
    args = ["--name", name, "--no-extract", "--force", "--archive", path, "--out", str(Path(path).parent)]
    entry = config["weights"][name]
    kind = ["--kind", entry.get("kind") or "auto"]  # trusted only once it loads as what it claims to be
    return " ".join(shlex.quote(a) for a in args + fetch_args(entry, "local_file") + kind)
