"""``ReconDataset``: (image, GT points) pairs from a prepared split file (``mesc3d prepare`` output).

Split file keys (docs/design.md, "File formats"): ``points`` (S, G, 3), ``shape_ids`` (S,), ``categories`` (S,),
``images`` (S, V) and ``masks`` (S, V) root-relative paths, ``bboxes`` (S, V, 4), ``root``, ``source``.

``__getitem__(i)`` -> dict:
- ``image``    float32 (3, H, H) in [0, 1], RGB, H = ``data_cfg.image_size``;
  ShapeNet: train = random view in 1..V-1, random ``crop`` window (+ horizontal flip if
  ``data_cfg.hflip``); eval = view 0, centre crop.  Renders are composited over white
  (``mesc3d.data.images``).  Pix3D: the bbox square (side max(w, h)), mask applied if
  ``data_cfg.use_mask``; no random augmentation.
- ``points``   float32 (G, 3), the fixed GT subset in the unit ball;
- ``class_id`` int64 index into ``categories`` (-1 if the class is not listed);
- ``index``    int.

All randomness comes from torch's global RNG (``torch.randint`` / ``torch.rand``), so restoring
``torch.get_rng_state()`` on resume reproduces the exact same views and crops.  Image paths are
resolved against the split file's ``root``; if that folder no longer exists, ``data_cfg.root``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from mesc3d.config import DataCfg
from mesc3d.data import images as im
from mesc3d.errors import BadInputError
from mesc3d.io import load_npz

KEYS = ("points", "shape_ids", "categories", "images", "masks", "bboxes", "root", "source")


class ReconDataset(Dataset):
    def __init__(self, split_file: str | Path, data_cfg: DataCfg, categories: list[str], train: bool):
        self.path = Path(split_file)
        d = load_npz(self.path, required=KEYS)
        self.points = d["points"].astype(np.float32)  # (S, G, 3)
        s = len(self.points)
        if self.points.ndim != 3 or self.points.shape[2] != 3:
            raise BadInputError(self.path, f"points must be (S, G, 3), got {self.points.shape}")
        self.shape_ids = d["shape_ids"].astype(str)  # (S,)
        self.categories_of_items = d["categories"].astype(str)  # (S,)
        self.images = d["images"].astype(str)  # (S, V)
        self.masks = d["masks"].astype(str)  # (S, V)
        self.bboxes = d["bboxes"].astype(np.float32)  # (S, V, 4)
        if self.images.ndim != 2 or len(self.images) != s or len(self.shape_ids) != s:
            raise BadInputError(self.path, f"images must be (S, V) with S = {s}, got {self.images.shape}")
        self.source = str(d["source"])
        root = Path(str(d["root"]))
        self.root = root if root.is_dir() else Path(data_cfg.root)
        self.cfg = data_cfg
        self.train = bool(train)
        self.categories = list(categories)
        lookup = {c: k for k, c in enumerate(self.categories)}
        self.class_ids = np.array([lookup.get(c, -1) for c in self.categories_of_items], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.points)

    def _shapenet_image(self, i: int) -> np.ndarray:
        n_views = self.images.shape[1]
        view = int(torch.randint(1, n_views, (1,)).item()) if self.train and n_views > 1 else 0
        rgb = im.composite_white(im.load_rgba(self.root / self.images[i, view]))  # (137, 137, 3)
        h, w = rgb.shape[:2]
        c = min(self.cfg.crop, h, w)
        if self.train:
            top = int(torch.randint(0, h - c + 1, (1,)).item())
            left = int(torch.randint(0, w - c + 1, (1,)).item())
        else:
            top, left = im.center_offset(h, c), im.center_offset(w, c)
        out = im.crop(rgb, top, left, c)
        if self.train and self.cfg.hflip and bool(torch.rand(1).item() < 0.5):
            out = out[:, ::-1]
        return np.ascontiguousarray(out)

    def _pix3d_image(self, i: int) -> np.ndarray:
        rgb = im.load_rgb(self.root / self.images[i, 0])  # (h, w, 3)
        if self.cfg.use_mask and self.masks[i, 0]:
            rgb = im.apply_mask(rgb, im.load_mask(self.root / self.masks[i, 0]))
        return im.square_crop(rgb, self.bboxes[i, 0])

    def __getitem__(self, i: int) -> dict:
        i = int(i)
        img = self._pix3d_image(i) if self.source == "pix3d" else self._shapenet_image(i)
        img = im.resize(img, self.cfg.image_size)  # (H, H, 3) uint8
        image = torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1).float().div_(255.0)
        return {
            "image": image,  # (3, H, H)
            "points": torch.from_numpy(self.points[i].copy()),  # (G, 3)
            "class_id": torch.tensor(self.class_ids[i], dtype=torch.int64),
            "index": i,
        }
