"""Atomic file writing and the small on-disk formats shared by every command.

Contract: nothing that Snakemake may trust is ever half written.  Every writer goes through
``atomic_path`` (write to a temp file in the same directory, fsync, then ``os.replace``), so an
interrupted job leaves either the old file or no file, never a truncated one.

Formats
- point clouds / split files: ``.npz`` (``np.savez_compressed``), see ``save_npz``/``load_npz``;
- feature caches: ``.h5`` (written by ``mesc3d.cli.cache_features`` through ``atomic_path``);
- qualitative samples: ``.ply`` (``write_ply``, ASCII, xyz only);
- tables: ``.csv`` via ``write_csv`` (pandas) and text via ``write_text``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from mesc3d.errors import BadInputError

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temp path beside ``path``; on success rename it onto ``path``, on error delete it.

    The temp name keeps the final suffix (``x.npz`` -> ``.x.npz.tmpXXXX.npz``) so libraries that
    infer the format from the extension (numpy, h5py, PIL) behave.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix if suffix is None else suffix
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; use the usual mode
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_csv(path: str | Path, frame) -> None:
    """Write a pandas DataFrame atomically, without the index, floats with fixed precision."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g", lineterminator="\n")


def save_npz(path: str | Path, **arrays: Any) -> None:
    """``np.savez_compressed`` through a temp file (deterministic bytes for equal inputs)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)


def load_npz(path: str | Path, required: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """Load every array of an ``.npz`` into memory; a truncated/corrupt file gives ``BadInputError``."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError(path, "file does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            out = {k: data[k] for k in data.files}
    except Exception as err:  # zipfile.BadZipFile, ValueError, EOFError, ...
        raise BadInputError(path, f"not a readable .npz archive ({type(err).__name__}: {err})") from err
    missing = [k for k in required if k not in out]
    if missing:
        raise BadInputError(path, f"missing arrays {missing}; has {sorted(out)}")
    return out


def write_ply(path: str | Path, points: np.ndarray) -> None:
    """ASCII PLY with xyz only; ``points`` is (N, 3)."""
    points = np.asarray(points, dtype=np.float32)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"write_ply expects (N, 3) points, got {points.shape}")
    header = (
        "ply\nformat ascii 1.0\n"
        f"element vertex {len(points)}\n"
        "property float x\nproperty float y\nproperty float z\nend_header\n"
    )
    body = "\n".join(f"{x:.6f} {y:.6f} {z:.6f}" for x, y, z in points)
    write_text(path, header + body + "\n")


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
