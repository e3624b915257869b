"""Reader of the ShapeNet (3D-R2N2 renderings + 3DAttriFlow point clouds) layout, real or synthetic.

Layout under a data root R (docs/design.md)::

    R/ShapeNetV1PointCloud/<synset>/<model_id>.points.ply.npy     float (K, 3) or (K, 6) -> keep [:, :3]
    R/ShapeNetV1Renderings/<synset>/<model_id>/rendering/00.png .. 23.png   137x137 RGBA

Models of a class are the point-cloud files of its synset.  Split rule (3DAttriFlow = MESC-3D):
per class, sorted ids, first ``train_frac`` train, next ``val_frac`` val, the rest test
(``split_ids``).  Every model must have all its renders, as square RGBA PNGs that decode completely
(R2N2: 137x137; at least ``data.crop`` wide); otherwise
``BadInputError`` names the offending file.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

from mesc3d.categories import SEEN, synset_of
from mesc3d.errors import BadInputError

POINTS_DIR = "ShapeNetV1PointCloud"
RENDER_DIR = "ShapeNetV1Renderings"
POINTS_SUFFIX = ".points.ply.npy"
SPLITS = ("train", "val", "test")


def points_path(root: str | Path, synset: str, model_id: str) -> Path:
    return Path(root) / POINTS_DIR / synset / f"{model_id}{POINTS_SUFFIX}"


def view_relpath(synset: str, model_id: str, view: int) -> str:
    """Render path relative to the data root (as stored in the split files)."""
    return f"{RENDER_DIR}/{synset}/{model_id}/rendering/{view:02d}.png"


def list_models(root: str | Path, category: str, folder_name: str | None = None) -> list[str]:
    """Sorted model ids of ``category`` (from its point-cloud folder: the synset, or ``folder_name``)."""
    folder = Path(root) / POINTS_DIR / (folder_name or synset_of(category))
    if not folder.is_dir():
        raise BadInputError(folder, f"missing point-cloud folder for class {category!r}")
    ids = sorted(p.name[: -len(POINTS_SUFFIX)] for p in folder.iterdir() if p.name.endswith(POINTS_SUFFIX))
    if not ids:
        raise BadInputError(folder, f"no *{POINTS_SUFFIX} files for class {category!r}")
    return ids


def _cut(n: int, frac: float) -> int:
    return int(math.floor(n * frac + 1e-9))  # 30 * 0.7 -> 21, not 20


def split_ids(ids: list[str], train_frac: float = 0.7, val_frac: float = 0.1) -> dict[str, list[str]]:
    """Per-class split of sorted ids: [:70%] train, [70%:80%] val, [80%:] test."""
    ids = sorted(ids)
    a, b = _cut(len(ids), train_frac), _cut(len(ids), train_frac + val_frac)
    return {"train": ids[:a], "val": ids[a:b], "test": ids[b:]}


def read_points(path: str | Path) -> np.ndarray:
    """Dense points -> float32 (K, 3) (xyz of a (K, 3) or (K, 6) array), validated."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError(path, "point-cloud file does not exist")
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as err:
        raise BadInputError(path, f"not a readable .npy array ({type(err).__name__}: {err})") from err
    if arr.ndim != 2 or arr.shape[1] < 3 or arr.shape[0] == 0:
        raise BadInputError(path, f"points must be (K, 3) or (K, 6) with K > 0, got {arr.shape}")
    xyz = np.asarray(arr[:, :3], dtype=np.float32)
    if not np.isfinite(xyz).all():
        raise BadInputError(path, "points contain non-finite values")
    return xyz


def check_rgba_png(path: str | Path, min_side: int = 1) -> tuple[int, int]:
    """Raise unless ``path`` is an RGBA image that decodes completely, square, each side >= ``min_side``.

    The whole image is decoded (``Image.load``), so a truncated or corrupt PNG fails here, naming
    the file, not hours later in training.  Returns its (width, height).
    """
    path = Path(path)
    if not path.is_file():
        raise BadInputError(path, "missing rendering")
    try:
        with Image.open(path) as im:
            mode, fmt, size = im.mode, im.format, im.size
            im.load()
    except Exception as err:
        raise BadInputError(path, f"truncated or unreadable image ({type(err).__name__}: {err})") from err
    if mode != "RGBA":
        raise BadInputError(path, f"renders must be RGBA PNGs, got mode {mode!r} ({fmt})")
    if size[0] != size[1] or size[0] < min_side:
        raise BadInputError(path, f"renders must be square with sides >= {min_side} (data.crop), got {size[0]}x{size[1]}")
    return size


def check_model_views(root: str | Path, synset: str, model_id: str, n_views: int, min_side: int = 1) -> list[str]:
    """Validate (fully decode) the ``n_views`` renders of one model; returns their root-relative paths."""
    rels = [view_relpath(synset, model_id, v) for v in range(n_views)]
    sizes = {check_rgba_png(Path(root) / rel, min_side) for rel in rels}
    if len(sizes) > 1:
        raise BadInputError(Path(root) / rels[0], f"renders of one model differ in size: {sorted(sizes)}")
    return rels


def scan(root: str | Path, categories: list[str], train_frac: float, val_frac: float) -> dict[str, list[tuple]]:
    """{split: [(category, synset, model_id), ...]} in class order, ids sorted within a class."""
    out: dict[str, list[tuple]] = {s: [] for s in SPLITS}
    for cat in categories:
        if cat not in SEEN:
            raise BadInputError(Path(root) / POINTS_DIR, f"category {cat!r} has no ShapeNet synset")
        parts = split_ids(list_models(root, cat), train_frac, val_frac)
        for s in SPLITS:
            out[s] += [(cat, SEEN[cat], mid) for mid in parts[s]]
    return out
