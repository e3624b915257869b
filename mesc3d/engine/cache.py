"""The user cache of the in-the-wild commands ($MESC3D_CACHE, else ~/.cache/mesc3d): where the
ImageNet-name table and the grounding head trained on first use are kept, and the one writer both go
through.  Kept apart from ``mesc3d.io`` on purpose: every rule's code fingerprint includes
``mesc3d.io``, this module only the grounding and reconstruct rules'."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable

from mesc3d.io import atomic_path

log = logging.getLogger(__name__)


def cache_dir() -> Path:
    return Path(os.environ.get("MESC3D_CACHE") or Path.home() / ".cache" / "mesc3d")


def write_cache(path: str | Path, write: Callable[[Path], None]) -> bool:
    """Write a cache file atomically with ``write(temp path)`` -> whether it was written.  A cache
    folder that cannot be written (a read-only $HOME or MESC3D_CACHE) is a warning, not an error: the
    caller works on with what it computed, just without the cache."""
    try:
        with atomic_path(path) as tmp:
            write(tmp)
        return True
    except OSError as err:
        log.warning("cannot write the cache %s (%s); set MESC3D_CACHE to a writable folder to keep it",
                    path, err.strerror or type(err).__name__)
        return False
