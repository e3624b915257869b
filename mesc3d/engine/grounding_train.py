"""Train the grounding head (``mesc3d.models.grounding_head``) on renders composited over real photos.

Training scenes: for each of the 17 classes, ``per_class`` x ``CLASS_SHARE`` procedural shapes
(1.5 x for the thin / open classes, 0.8 x for the others; shape seed ``TRAIN_SHAPE_SEED``, never
the benchmark's or the default data's) rendered from a random camera and pasted, at 6-90 % of the
shorter side (log-uniform), onto a random square crop of a *tune* photo (grey ones tinted with a
random colour ramp, 20 % of the colour ones made grey first, random flips, 30 % with a band of
another tune photo across them) or onto a procedural cluttered background; 30 % are partly covered
by the photo's own content, 25 % hold a second object of another class (labelled as its class).
The benchmark's held-out photos are never used.  EfficientNet-Lite0 stays frozen: its pyramid
features are computed once, then the head is fitted with per-cell cross-entropy (label = the class
where the object covers >= 40 % of a stride-16 cell, background where it covers < 5 %, ignored in
between) with hard background cells mined online: background cells count half, and the
``HARD_BG_SHARE`` of them the head currently scores most wrongly count ``1 + HARD_BG_EXTRA`` times
more -- real clutter that looks like an object (a shelf of boxes, a medal ribbon) is what the head
otherwise boxes instead of the named object.
``MEMBERS`` heads are fitted on the same features from seeds ``seed``, ``seed + 1``, ... and averaged
(``GroundingHead.ensemble``): one training's luck moves the benchmark by several points, their
average less.

Deterministic for a given seed and thread count.  ``load_or_train(path)``: read a head file, or
(``path`` None) the one cached under ``$MESC3D_CACHE`` -- training and caching it atomically first
when absent (about five CPU minutes on one thread).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from mesc3d.categories import ALL_NAMES
from mesc3d.data import composite as cp
from mesc3d.engine.cache import write_cache
from mesc3d.errors import BadInputError, UserFacingError
from mesc3d.safe_load import load_torch
from mesc3d.models.grounding_head import GRID_SIDE, HEAD_VERSION, GroundingHead, network_input, pyramid

log = logging.getLogger(__name__)
CACHE_NAME = f"grounding_head_v{HEAD_VERSION}.pt"
# scenes per class relative to ``per_class``: more of the thin / open classes the head finds hardest
# (few 16-px cells each), fewer of the others -- the same number of scenes in all
CLASS_SHARE = {"tool": 1.5, "rifle": 1.5, "lamp": 1.5, "table": 1.5, "chair": 1.5}
OTHER_SHARE = 0.8
BG_WEIGHT = 0.5  # background cells outnumber object cells
HARD_BG_SHARE, HARD_BG_EXTRA = 0.25, 1.5  # the hardest quarter of a batch's background cells weigh 4x more
MEMBERS = 4  # heads averaged (seeds seed .. seed + 3, the same scenes)


def _tinted(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Grey photo -> a random two-colour ramp of its grey levels; colour photo: random channel gains."""
    if np.ptp(img.astype(np.int16), axis=2).max() < 8:
        g = img[..., :1].astype(np.float32) / 255.0
        lo, hi = rng.uniform(0, 120, 3), rng.uniform(135, 255, 3)
        return np.clip(lo + g * (hi - lo), 0, 255).astype(np.uint8)
    return np.clip(img * rng.uniform(0.8, 1.2, 3), 0, 255).astype(np.uint8)


def _photo_crop(rng: np.random.Generator, photos: dict[str, np.ndarray], side: int) -> np.ndarray:
    """A random square crop of a tune photo (tinted, flipped; colour ones grey 20 % of the time)."""
    from PIL import Image

    img = photos[list(photos)[int(rng.integers(len(photos)))]]
    h, w = img.shape[:2]
    s = int(min(h, w) * rng.uniform(0.5, 1.0))
    y, x = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
    img = img[y:y + s, x:x + s]
    if rng.uniform() < 0.2:  # real grey photos hold objects of every colour
        img = np.repeat(img.mean(2, keepdims=True).astype(np.uint8), 3, axis=2)
    img = _tinted(img, rng)
    if rng.uniform() < 0.5:
        img = img[:, ::-1]
    return np.asarray(Image.fromarray(np.ascontiguousarray(img)).resize((side, side), Image.BILINEAR))


def training_background(rng: np.random.Generator, photos: dict[str, np.ndarray], side: int) -> np.ndarray:
    """A ``side`` x ``side`` background: a tune photo crop (tinted, flipped), 30 % of them with a
    band of another photo across them (busier scenes, edges that are not objects), or procedural
    clutter."""
    from PIL import Image

    if rng.uniform() < 0.35:
        img = cp.procedural_background(rng, (side, side))
        return np.asarray(Image.fromarray(np.ascontiguousarray(img)).resize((side, side), Image.BILINEAR))
    img = _photo_crop(rng, photos, side).copy()
    if rng.uniform() < 0.3:
        other = _photo_crop(rng, photos, side)
        a, b = sorted(int(v) for v in rng.integers(0, side, 2))
        if rng.uniform() < 0.5:
            img[:, a:b + side // 8] = other[:, a:b + side // 8]
        else:
            img[a:b + side // 8] = other[a:b + side // 8]
    return img


def build_scenes(per_class: int, seed: int = 0, side: int = GRID_SIDE):
    """-> list of (photo (side, side, 3), mask (side, side), class index, None or (mask, class index)
    of a second object)."""
    photos = {n: cp.photo(n) for n in cp.TUNE_PHOTOS}
    rng = np.random.default_rng([seed, 31])
    scenes = []
    for ci, cat in enumerate(ALL_NAMES):
        for k in range(int(round(per_class * CLASS_SHARE.get(cat, OTHER_SHARE)))):
            bg = training_background(rng, photos, side)
            if rng.uniform() < 0.25:  # a second object of another class: the head must tell them apart
                other = ALL_NAMES[(ci + int(rng.integers(1, len(ALL_NAMES)))) % len(ALL_NAMES)]
                bg, second, _ = cp.composite(bg, cp.render_object(other, cp.TRAIN_SHAPE_SEED + seed, 10_000 + k),
                                             rng, float(np.exp(rng.uniform(np.log(0.08), np.log(0.5)))))
            else:
                second = None
            rgba = cp.render_object(cat, cp.TRAIN_SHAPE_SEED + seed, k)
            frac = float(np.exp(rng.uniform(np.log(0.06), np.log(0.9))))  # log-uniform: many small objects
            img, mask, _ = cp.composite(bg, rgba, rng, frac, occlude=bool(rng.uniform() < 0.3))
            scenes.append((img, mask, ci, None if second is None else (second & ~mask, ALL_NAMES.index(other))))
    return scenes


def cell_labels(mask: np.ndarray, grid: tuple[int, int], class_index: int) -> torch.Tensor:
    """bool (H, W) mask -> (h, w) long labels: 1 + class, 0 background, -100 ignored.

    A cell is the object where it covers >= 40 % of it (>= 60 % of the best-covered cell's share
    for objects too small to fill a cell), background where it covers < 5 %."""
    cov = F.adaptive_avg_pool2d(torch.from_numpy(mask.astype(np.float32))[None, None], grid)[0, 0]  # (h, w)
    lab = torch.full(grid, -100, dtype=torch.long)
    lab[cov < 0.05] = 0
    lab[cov >= min(0.4, 0.6 * float(cov.max()))] = 1 + class_index
    return lab


def scene_features(net, scenes) -> tuple[torch.Tensor, torch.Tensor]:
    """Scenes -> (pyramid features (N, D, h, w) float16, cell labels (N, h, w))."""
    feats, labels = [], []
    for img, mask, ci, second in scenes:
        pyr, _, _ = pyramid(net, network_input(img))  # (1, D, h, w)
        feats.append(pyr[0].half())
        lab = cell_labels(mask, tuple(pyr.shape[-2:]), ci)
        if second is not None and second[0].any():
            lab2 = cell_labels(second[0], tuple(pyr.shape[-2:]), second[1])
            lab = torch.where((lab2 != 0) & (lab <= 0), lab2, lab)  # the second object's cells, where free
        labels.append(lab)
    return torch.stack(feats), torch.stack(labels)


def fit_head(x_all: torch.Tensor, y_all: torch.Tensor, steps: int = 400, batch: int = 16,
             seed: int = 0) -> GroundingHead:
    """Per-cell cross-entropy with hard background mining on frozen features x_all (N, D, h, w),
    labels y_all (N, h, w)."""
    torch.manual_seed(seed)
    head = GroundingHead(list(ALL_NAMES))
    opt = torch.optim.AdamW(head.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    gen = torch.Generator().manual_seed(seed)
    head.train()
    with torch.enable_grad():  # callers may run under no_grad (inference CLIs train the head on first use)
        _fit_steps(head, opt, sched, x_all, y_all, steps, batch, gen)
    return head.eval()


def cell_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """logits (B, 1 + C, h, w), labels y (B, h, w) -> the loss: object cells weigh 1, background cells
    ``BG_WEIGHT``, the ``HARD_BG_SHARE`` hardest background cells ``HARD_BG_EXTRA`` more; ignored
    cells (-100) nothing; divided by the number of labelled cells."""
    ce = F.cross_entropy(logits, y, ignore_index=-100, reduction="none")  # (B, h, w)
    obj, bg = ce[y > 0], ce[y == 0]
    loss = obj.sum() + BG_WEIGHT * bg.sum()
    if bg.numel():
        loss = loss + HARD_BG_EXTRA * torch.topk(bg, max(1, int(HARD_BG_SHARE * bg.numel()))).values.sum()
    return loss / max(1, obj.numel() + bg.numel())


def _fit_steps(head, opt, sched, x_all, y_all, steps, batch, gen) -> None:
    for step in range(steps):
        idx = torch.randint(len(x_all), (batch,), generator=gen)
        x, y = x_all[idx].float(), y_all[idx]
        if step % 2:  # horizontal flips of the features' grid are flips of the scene
            x, y = x.flip(-1), y.flip(-1)
        loss = cell_loss(head(x), y)
        if not torch.isfinite(loss):
            raise UserFacingError(f"grounding head: non-finite loss at step {step + 1}/{steps}")
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 100 == 0 or step == steps - 1:
            log.info("grounding head step %d/%d: loss %.4f", step + 1, steps, float(loss.detach()))


def train_head(net, per_class: int = 60, steps: int = 400, seed: int = 0, members: int = MEMBERS) -> GroundingHead:
    """Fit ``members`` heads for the 17 classes on the same frozen EfficientNet-Lite0 pyramid features
    (seeds ``seed`` ... ``seed + members - 1``) -> their average."""
    x_all, y_all = scene_features(net, build_scenes(per_class, seed))
    heads = []
    for i in range(members):
        log.info("grounding head member %d/%d", i + 1, members)
        heads.append(fit_head(x_all, y_all, steps, seed=seed + i))
    return GroundingHead.ensemble(heads)


def train_and_save(out, seed: int = 0) -> GroundingHead:
    """Train the head with the packaged EfficientNet-Lite0 weights and write it atomically to ``out``."""
    from mesc3d.models.effnet_lite0 import load_effnet_lite0

    head = train_head(load_effnet_lite0(), seed=seed)
    save_head(head, out)
    return head


def save_head(head: GroundingHead, path) -> None:
    from mesc3d.io import atomic_path

    with atomic_path(Path(path)) as tmp:
        torch.save(head.export(), tmp)


def read_head(path) -> GroundingHead:
    path = Path(path)
    if not path.is_file():
        raise BadInputError(path, "grounding head file does not exist")
    state = load_torch(path, "grounding head file")
    try:
        return GroundingHead.from_export(state)
    except Exception as err:  # noqa: BLE001 - any unreadable file is one line
        raise BadInputError(path, f"not a grounding head file ({str(err).splitlines()[0][:160]})") from None


def load_or_train(path, net, cache: Path) -> GroundingHead:
    """The head of ``path``; else the cached one, trained (and cached atomically) on first use."""
    if path:
        return read_head(path)
    cached = cache / CACHE_NAME
    if cached.is_file():
        try:
            return read_head(cached)
        except BadInputError:
            log.warning("%s is not a grounding head: training a new one", cached)
    log.info("training the grounding head once (cached in %s)", cached)
    head = train_head(net)
    write_cache(cached, lambda tmp: torch.save(head.export(), tmp))  # a read-only cache: a warning
    return head
