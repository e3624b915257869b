"""Record which config keys a process reads (checks ``mesc3d.config_slices.STAGES`` against the code).

Test support: the package never imports this module.  ``install()`` (called at process start by
``tests/record_reads/sitecustomize.py`` when ``MESC3D_RECORD_CONFIG_READS=DIR`` is set) patches the
config dataclasses: every field read (``cfg.model.use_esm``) is noted as its dotted key, and at exit a
process that resolved a config writes ``DIR/<pid>.json`` = ``{"argv": [...], "keys": [...]}``.
Building a config (``config.from_dict``) and whole-config conversions (``config.to_dict``, used by
``config_hash`` and ``dump_yaml``, and dataclass equality/hash/repr) are not reads of individual keys
and are not recorded.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import threading
from contextlib import contextmanager
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import get_type_hints

ENV = "MESC3D_RECORD_CONFIG_READS"
_state = threading.local()
_reads: set[str] = set()
_installed = False
_resolved = False  # did this process build a config (only then is a record written)


@contextmanager
def bulk():
    """Reads inside this block are whole-config conversions, not key reads."""
    depth = getattr(_state, "depth", 0)
    _state.depth = depth + 1
    try:
        yield
    finally:
        _state.depth = depth


def _class_paths(cls: type, prefix: str = "") -> dict[type, str]:
    out = {cls: prefix.rstrip(".")}
    hints = get_type_hints(cls)
    for f in fields(cls):
        if is_dataclass(hints[f.name]):
            out.update(_class_paths(hints[f.name], f"{prefix}{f.name}."))
    return out


def _dump() -> None:
    if not _resolved:
        return
    out = Path(os.environ[ENV])
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{os.getpid()}.json").write_text(json.dumps({"argv": sys.argv, "keys": sorted(_reads)}))


def install() -> None:
    """Patch the config dataclasses to record field reads (idempotent; only when ENV is set)."""
    global _installed
    if _installed or not os.environ.get(ENV):
        return
    import mesc3d.config as config
    from mesc3d.config import ExperimentCfg

    _installed = True
    config.from_dict = _bulk_function(config.from_dict, resolves=True)
    config.to_dict = _bulk_function(config.to_dict)
    for cls, path in _class_paths(ExperimentCfg).items():
        names = {f.name for f in fields(cls)}
        original = cls.__getattribute__
        for special in ("__eq__", "__hash__", "__repr__"):
            _wrap_bulk(cls, special)

        def getattribute(self, name, _names=names, _path=path, _orig=original):
            if name in _names and not getattr(_state, "depth", 0):
                _reads.add(f"{_path}.{name}" if _path else name)
            return _orig(self, name)

        cls.__getattribute__ = getattribute
    atexit.register(_dump)


def _wrap_bulk(cls: type, name: str) -> None:
    fn = cls.__dict__.get(name)
    if fn is None:
        return

    def wrapped(self, *args, _fn=fn):
        with bulk():
            return _fn(self, *args)

    setattr(cls, name, wrapped)


def _bulk_function(fn, resolves: bool = False):
    """``fn`` with its reads counted as a whole-config conversion (module-level replacement: install
    runs before any module has imported the name)."""

    def wrapped(*args, **kwargs):
        global _resolved
        if resolves:
            _resolved = True
        with bulk():
            return fn(*args, **kwargs)

    wrapped.__wrapped__ = fn
    return wrapped
