"""Imports point one way and never form a circle; CLIs never import each other; the config-reads
recorder is test-only.

Every ``import`` / ``from ... import`` of every module under mesc3d/ (and bench/), at module level or
inside a function, is read from the AST.  An edge ``a -> b`` (b first-party) is allowed when
``rank(a) > rank(b)``, or when both sit in the same layer, or when b is a leaf module.  The layer table
(higher may import lower):

====  ==========  ==============================================================================
rank  layer       modules
====  ==========  ==============================================================================
6     entry       ``mesc3d.__main__``, ``bench.*`` (bench may use engine/models/data/ops, never a CLI)
5     cli         ``mesc3d.cli.*``: may import ``mesc3d.cli._common`` but no other CLI module
4     engine      ``mesc3d.engine.*``
3     models      ``mesc3d.models.*``  (never data)
3     data        ``mesc3d.data.*``    (never models)
3     report      ``mesc3d.metrics``, ``mesc3d.baselines``, ``mesc3d.tables``, ``mesc3d.table_render``,
                  ``mesc3d.viz``  (never models, data or engine)
2     ops         ``mesc3d.ops.*``
1     cuda_ext    ``cuda_ext.*``
0     leaf        every other top-level module (``mesc3d.config``, ``mesc3d.registries``,
                  ``mesc3d.errors``, ``mesc3d.categories``, ``mesc3d.io``, ``mesc3d.safe_load``,
                  ``mesc3d.config_slices``, ``mesc3d.codedeps``, ``mesc3d.table_ids``, ...): importable
                  from anywhere, itself imports only leaves
====  ==========  ==============================================================================

Layers of the same rank are siblings: they may not import each other (models vs data vs report).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIRST_PARTY = ("mesc3d", "cuda_ext")

RANK = {"entry": 6, "cli": 5, "engine": 4, "models": 3, "data": 3, "report": 3, "ops": 2, "cuda_ext": 1,
        "leaf": 0}
REPORT = {"mesc3d.metrics", "mesc3d.baselines", "mesc3d.tables", "mesc3d.table_render", "mesc3d.viz"}
CLI_SHARED = {"mesc3d.cli._common"}


def layer(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "bench" or module == "mesc3d.__main__":
        return "entry"
    if parts[0] == "cuda_ext":
        return "cuda_ext"
    if len(parts) > 1 and parts[1] in ("cli", "engine", "models", "data", "ops"):
        return parts[1]
    if module in REPORT:
        return "report"
    return "leaf"  # mesc3d itself and every other top-level module


def modules() -> dict[str, Path]:
    out = {}
    for top in ("mesc3d", "cuda_ext", "bench"):
        for f in sorted((REPO / top).rglob("*.py")):
            name = ".".join(f.relative_to(REPO).with_suffix("").parts)
            out[name.removesuffix(".__init__")] = f
    return out


def imports(name: str, path: Path, known: dict[str, Path]) -> list[tuple[str, int]]:
    """(first-party module imported, line) of every import statement in the file."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                pkg = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                pkg = pkg[: len(pkg) - (node.level - 1)]
                base = ".".join(pkg + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for a in node.names:  # `from pkg import submodule` imports the submodule
                out.append((f"{base}.{a.name}" if f"{base}.{a.name}" in known else base, node.lineno))
    return [(m, line) for m, line in out if m.split(".")[0] in FIRST_PARTY and m != name]


def graph() -> dict[str, list[tuple[str, int]]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def test_imports_point_down_the_layers():
    bad = []
    for a, targets in graph().items():
        la = layer(a)
        for b, line in targets:
            lb = layer(b)
            if lb == "leaf" or la == lb and la != "cli":
                continue
            if la == "cli" and lb == "cli":
                if b not in CLI_SHARED:
                    bad.append(f"{a}:{line} imports {b}: CLIs never import each other (shared code goes to "
                               f"cli/_common.py or engine/)")
                continue
            if a.startswith("bench.") and lb == "cli":
                bad.append(f"{a}:{line} imports {b}: a CLI module is not a library (move the code to engine/)")
                continue
            if RANK[la] <= RANK[lb]:
                bad.append(f"{a}:{line} ({la}) imports {b} ({lb}): imports point cli -> engine -> models/data "
                           f"-> ops -> cuda_ext; leaves import only leaves")
    assert not bad, "\n".join(bad)


def test_no_import_cycles():
    g = {a: sorted({b for b, _ in targets}) for a, targets in graph().items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in g.get(node, []):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [node, nxt]) if nxt in stack
                              else f"{node} -> {nxt}")
            elif nxt not in state:
                visit(nxt, stack + [node])
        state[node] = 2

    for node in sorted(g):
        if node not in state:
            visit(node, [])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_layer_rules_catch_what_they_should():
    assert layer("mesc3d.models.teachers") == "models" and layer("mesc3d.config") == "leaf"
    assert layer("mesc3d.registries") == "leaf" and layer("mesc3d.metrics") == "report"
    assert RANK["models"] == RANK["data"]  # siblings: neither may import the other
    assert RANK[layer("mesc3d.cli.train")] > RANK[layer("mesc3d.engine.trainer")] > RANK[layer("mesc3d.ops")]


def test_package_never_imports_the_config_reads_recorder():
    users = [a for a, targets in graph().items() if any(b == "mesc3d.config_reads" for b, _ in targets)]
    assert users == [], users


def test_config_reads_recorder_is_installed_by_the_test_hook(tmp_path):
    """tests/record_reads/sitecustomize.py installs the recorder; a stage's key reads are recorded,
    building a config and hashing it are not."""
    code = ("from mesc3d.config import config_hash, load_config\n"
            "cfg = load_config(None)\nconfig_hash(cfg)\ncfg.model.use_esm\n")
    env = {**os.environ, "MESC3D_RECORD_CONFIG_READS": str(tmp_path / "reads"),
           "PYTHONPATH": os.pathsep.join([str(REPO / "tests" / "record_reads"), str(REPO)])}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=tmp_path)
    import json

    (record,) = [json.loads(p.read_text()) for p in (tmp_path / "reads").glob("*.json")]
    assert record["keys"] == ["model", "model.use_esm"], record["keys"]  # the section, then its key
    env.pop("MESC3D_RECORD_CONFIG_READS")
    subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=tmp_path)  # off: nothing written
    assert len(list((tmp_path / "reads").glob("*.json"))) == 1
