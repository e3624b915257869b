"""HDF5 cache of frozen point-encoder features (written by ``mesc3d cache-features``, read by stage 1).

File contract (one file per split, e.g. ``F/train.h5``):
- ``features``    float32 | float16 (S, F)   frozen encoder output (F = 2*trans_dim, 768 for Point-MAE)
- ``shape_ids``   str (S,)                   shape ids of the split file, same order
- ``class_ids``   int64 (S,)                 index into ``categories`` (-1 = not a configured class)
- ``categories``  str (C,)                   cfg.data.categories at caching time
- attrs: ``encoder`` (str), ``checkpoint_sha256`` (str, "" for a random-init encoder),
  ``split_file`` (str), ``format_version`` (int)
Datasets are chunked and gzip-compressed; the file is written through ``mesc3d.io.atomic_path``.
A missing, truncated or inconsistent file raises ``BadInputError`` naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from mesc3d.errors import BadInputError
from mesc3d.io import atomic_path

FORMAT_VERSION = 1
REQUIRED = ("features", "shape_ids", "class_ids", "categories")


@dataclass
class FeatureCache:
    features: np.ndarray  # (S, F) float32 (float16 files are up-cast on read)
    shape_ids: np.ndarray  # (S,) str
    class_ids: np.ndarray  # (S,) int64
    categories: list[str]
    attrs: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.features.shape[0])


def write_feature_cache(path: str | Path, features: np.ndarray, shape_ids: Sequence[str], class_ids: np.ndarray,
                        categories: Sequence[str], attrs: dict | None = None, dtype: str = "float32",
                        chunk_rows: int = 1024) -> None:
    """Write one split's features atomically (see module docstring for the layout)."""
    import h5py

    features = np.asarray(features)
    if features.ndim != 2:
        raise ValueError(f"features must be (S, F), got {features.shape}")
    s = features.shape[0]
    class_ids = np.asarray(class_ids, dtype=np.int64)
    if len(shape_ids) != s or class_ids.shape != (s,):
        raise ValueError(f"shape_ids/class_ids must have {s} rows, got {len(shape_ids)} / {class_ids.shape}")
    from mesc3d.config import ENUMS

    if dtype not in ENUMS["prompt.feature_dtype"]:
        raise ValueError(f"dtype must be one of {list(ENUMS['prompt.feature_dtype'])}, got {dtype!r}")
    str_dt = h5py.string_dtype("utf-8")
    chunks = (max(1, min(chunk_rows, s)), features.shape[1]) if s else None
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as fh:
            fh.create_dataset("features", data=features.astype(dtype), chunks=chunks,
                              compression="gzip" if s else None, compression_opts=4 if s else None,
                              shuffle=bool(s))
            fh.create_dataset("shape_ids", data=np.asarray(list(shape_ids), dtype=object), dtype=str_dt)
            fh.create_dataset("class_ids", data=class_ids)
            fh.create_dataset("categories", data=np.asarray(list(categories), dtype=object), dtype=str_dt)
            fh.attrs["format_version"] = FORMAT_VERSION
            for key, value in (attrs or {}).items():
                fh.attrs[key] = value


def read_feature_cache(path: str | Path) -> FeatureCache:
    """Load a feature cache fully into memory (features as float32)."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise BadInputError(path, "feature cache does not exist (run `mesc3d cache-features`)")
    try:
        with h5py.File(path, "r") as fh:
            missing = [k for k in REQUIRED if k not in fh]
            if missing:
                raise BadInputError(path, f"feature cache lacks datasets {missing}; has {sorted(fh.keys())}")
            features = fh["features"][()].astype(np.float32)
            shape_ids = np.asarray([s.decode() if isinstance(s, bytes) else str(s) for s in fh["shape_ids"][()]])
            class_ids = fh["class_ids"][()].astype(np.int64)
            categories = [s.decode() if isinstance(s, bytes) else str(s) for s in fh["categories"][()]]
            attrs = {k: (v.item() if hasattr(v, "item") else v) for k, v in fh.attrs.items()}
    except BadInputError:
        raise
    except Exception as err:  # OSError (truncated / not HDF5), KeyError, ValueError from a damaged chunk
        raise BadInputError(path, f"not a readable HDF5 feature cache ({type(err).__name__}: {err})") from err
    if features.ndim != 2 or len(shape_ids) != len(features) or class_ids.shape != (len(features),):
        raise BadInputError(path, f"inconsistent feature cache: features {features.shape}, "
                                  f"{len(shape_ids)} shape_ids, class_ids {class_ids.shape}")
    if len(class_ids) and (class_ids.max() >= len(categories) or class_ids.min() < -1):
        raise BadInputError(path, f"class_ids outside [-1, {len(categories)})")
    if not np.isfinite(features).all():
        raise BadInputError(path, "features contain NaN or Inf")
    return FeatureCache(features, shape_ids, class_ids, categories, attrs)


def remap_class_ids(cache: FeatureCache, categories: Sequence[str], path: str | Path = "") -> np.ndarray:
    """Class ids of ``cache`` re-indexed into ``categories`` (a file cached under another class order)."""
    lookup = {name: i for i, name in enumerate(categories)}
    unknown = sorted({cache.categories[c] for c in cache.class_ids if c >= 0} - set(lookup))
    if unknown:
        raise BadInputError(path or "feature cache", f"classes {unknown} are not in the config's categories")
    table = np.array([lookup.get(n, -1) for n in cache.categories] + [-1], dtype=np.int64)
    return table[cache.class_ids]  # -1 indexes the trailing -1
