"""Code fingerprints for the workflow: what a CLI imports, hashed by meaning, not bytes.

``closure("mesc3d.cli.train")`` is every first-party module (``mesc3d.*``, ``cuda_ext.*``) the
module imports, directly or transitively, at module level or inside functions, plus the packages'
``__init__`` files that importing them runs.  ``fingerprint(module)`` hashes, per module of the
closure, its AST with docstrings removed (comments never reach the AST), so a comment or docstring
edit leaves it unchanged and a real change in any imported module changes it.  Each rule passes its
CLI's fingerprint as a ``params`` value, so Snakemake reruns exactly the jobs whose code changed.

Parsing is cached per file (path, size, mtime_ns) within the process: the whole package parses in
well under a second when Snakemake builds the DAG.
"""

from __future__ import annotations

import ast
import hashlib
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # default root: the repository holding mesc3d/ and cuda_ext/
FIRST_PARTY = ("mesc3d", "cuda_ext")
# Modules whose effect on a result is entirely through the resolved config values, which every rule
# compares key by key (mesc3d/config_slices.py): editing a preset or a default must rerun only the
# stages whose effective keys changed, not every stage that imports the config machinery.
CONFIG_MODULES = ("mesc3d.config", "mesc3d.config_slices")
# modules that load files by path (no import statement to follow): module -> glob under ROOT
LOADS_BY_PATH = {"mesc3d.ops.dispatch": ("cuda_ext/*.py", "cuda_ext/*.cu", "cuda_ext/*.cpp")}
# A module importing this name imports, through it, every module a registry entry names as
# "module:function" (the registries' builders and readers are imported on use, by name).
REGISTRY_LOADER = ("mesc3d.registries", "load_reader")
# The registries (leaf, imported by the config) are hashed into a CLI's fingerprint only when a module of
# its closure other than the config modules reads them (an image encoder, a teacher ...): a new encoder
# row reruns the stages that build encoders, not data preparation or the baselines.
REGISTRIES = "mesc3d.registries"


def registry_imports(name: str) -> tuple[str, ...]:
    """Modules ``name`` imports by a registry's ``"module:function"`` builder (no import statement)."""
    from mesc3d import registries

    table = {"mesc3d.models.image_encoder": registries.IMAGE_ENCODERS, "mesc3d.models.teachers": registries.TEACHERS}
    return tuple(sorted({spec.builder.partition(":")[0] for spec in table.get(name, {}).values()}))


def module_file(name: str, root: Path = ROOT) -> Path | None:
    """``mesc3d.models.esm`` -> its .py file (package -> __init__.py); None when not first-party."""
    if name.split(".")[0] not in FIRST_PARTY:
        return None
    base = Path(root).joinpath(*name.split("."))
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def _is_package(name: str, root: Path) -> bool:
    f = module_file(name, root)
    return f is not None and f.name == "__init__.py"


@lru_cache(maxsize=None)
def _parsed(path: str, size: int, mtime_ns: int) -> tuple[str, tuple[str, ...]]:
    """(AST digest without docstrings, raw imported names) of one file; cached by its stat."""
    tree = ast.parse(Path(path).read_text(), filename=path)
    imports: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imports += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            imports.append(("." * node.level) + (node.module or "") + "|" + ",".join(a.name for a in node.names))
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    digest = hashlib.sha256(ast.dump(tree, annotate_fields=False).encode()).hexdigest()
    return digest, tuple(imports)


def _file_info(path: Path) -> tuple[str, tuple[str, ...]]:
    st = path.stat()
    return _parsed(str(path), st.st_size, st.st_mtime_ns)


def _resolve(importer: str, raw: str, root: Path) -> list[str]:
    """Module names one import statement of ``importer`` can load."""
    if "|" not in raw:  # import a.b.c loads a, a.b, a.b.c
        parts = raw.split(".")
        return [".".join(parts[: i + 1]) for i in range(len(parts))]
    mod, names = raw.split("|")
    level = len(mod) - len(mod.lstrip("."))
    mod = mod.lstrip(".")
    if level:
        pkg = importer.split(".") if _is_package(importer, root) else importer.split(".")[:-1]
        pkg = pkg[: len(pkg) - (level - 1)]
        mod = ".".join(pkg + ([mod] if mod else []))
    parts = mod.split(".")
    out = [".".join(parts[: i + 1]) for i in range(len(parts))]
    out += [f"{mod}.{n}" for n in names.split(",") if n != "*"]  # `from pkg import submodule`
    return out


def closure(module: str, root: Path = ROOT) -> list[str]:
    """Sorted first-party module names ``module`` imports (itself included)."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = module_file(name, root)
        if path is None:
            continue
        seen.add(name)
        for raw in _file_info(path)[1]:
            todo += [m for m in _resolve(name, raw, root) if m not in seen]
            if raw.startswith(REGISTRY_LOADER[0] + "|") and REGISTRY_LOADER[1] in raw.split("|")[1].split(","):
                todo += _registry_modules(root)
        todo += [m for m in registry_imports(name) if m not in seen]
    return sorted(seen)


def _registry_modules(root: Path) -> list[str]:
    """First-party modules named by the data sources' ``"module:function"`` readers (what
    ``registries.load_reader`` imports on use); encoder builders are followed by ``registry_imports``."""
    from mesc3d import registries

    names = {spec.reader.partition(":")[0] for spec in registries.DATA_SOURCES.values()}
    return sorted(n for n in names if module_file(n, root) is not None)


def _loaded_files(names: list[str], root: Path) -> list[Path]:
    return sorted({f for n in names for pat in LOADS_BY_PATH.get(n, ()) for f in Path(root).glob(pat)})


@lru_cache(maxsize=None)
def _raw_digest(path: str, size: int, mtime_ns: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def fingerprint(module: str, root: Path = ROOT) -> str:
    """SHA-256 (16 hex) over (module name, AST digest) of the closure: the code a CLI runs.

    Files loaded by path (cuda_ext kernels) count too: Python ones by AST, others by bytes.
    """
    h = hashlib.sha256()
    names = closure(module, root)
    readers = [n for n in names if n not in CONFIG_MODULES and n != REGISTRIES
               and any(REGISTRIES in _resolve(n, raw, root) for raw in _file_info(module_file(n, root))[1])]
    for name in names:
        if name in CONFIG_MODULES or (name == REGISTRIES and not readers):
            continue
        h.update(f"{name}:{_file_info(module_file(name, root))[0]}\n".encode())
    for path in _loaded_files(names, root):
        st = path.stat()
        digest = _file_info(path)[0] if path.suffix == ".py" else _raw_digest(str(path), st.st_size, st.st_mtime_ns)
        h.update(f"{path.relative_to(root)}:{digest}\n".encode())
    return h.hexdigest()[:16]
