"""Procedural objects composited onto real photos at known places: grounding training and benchmarks.

``render_object(category, seed, index, size)`` renders one procedural shape of a class (the same
builders and renderer as ``mesc3d synth``) from a random camera and crops it to its alpha box ->
RGBA uint8.  ``composite(background, rgba, rng, frac, occlude)`` pastes it at a random place with
its longer side ``frac`` of the photo's shorter side; with ``occlude`` a patch of the photo's own
content (an ellipse or band cut from the same place of the background) is put back over part of
the object, so the object is partly covered by the photo.  It returns the photo, the true visible
mask (bool (H, W)) and the mask's box ``(x0, y0, x1, y1)`` (x1/y1 exclusive).

``PHOTOS`` lists the real photos that ship with scikit-image (and matplotlib's one and scikit-learn's
two), split into ``TUNE_PHOTOS`` (the grounding head is trained and its constants tuned on these) and
``HELD_OUT_PHOTOS`` (benchmark figures are reported on these only).  ``photo(name)`` returns one
as (H, W, 3) uint8 (grey ones repeated over three channels).  ``procedural_background`` is the
cluttered background of the procedural Pix3D-style photos, drawn from its own generator.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from mesc3d.data.render import cluttered_background, render_views
from mesc3d.data.shapes import make_shape, palette, shape_rng

HELD_OUT_PHOTOS = ("coffee", "chelsea", "astronaut", "rocket", "retina", "camera")
TUNE_PHOTOS = ("hubble_deep_field", "immunohistochemistry", "brick", "grass", "gravel", "moon", "clock",
               "coins", "page", "text", "cell", "colorwheel", "motorcycle", "grace_hopper", "china", "flower")
PHOTOS = HELD_OUT_PHOTOS + TUNE_PHOTOS
# shape seeds: never the 0 of the default procedural benchmark, different for training and benchmark
TRAIN_SHAPE_SEED, BENCH_SHAPE_SEED = 7919, 104729


def photo(name: str, max_side: int = 640) -> np.ndarray:
    """A sample photo -> (H, W, 3) uint8, longer side at most ``max_side``.  ``motorcycle`` is the
    left view of scikit-image's stereo pair, ``grace_hopper`` matplotlib's sample photo, ``china`` and
    ``flower`` scikit-learn's sample photos (a temple among trees, a flower: more real clutter)."""
    import skimage.data

    if name not in PHOTOS:
        raise ValueError(f"unknown photo {name!r}; known: {list(PHOTOS)}")
    if name == "motorcycle":
        img = np.asarray(skimage.data.stereo_motorcycle()[0])
    elif name == "grace_hopper":
        from matplotlib import cbook

        with cbook.get_sample_data("grace_hopper.jpg") as fh:
            img = np.asarray(Image.open(fh).convert("RGB"))
    elif name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        img = np.asarray(load_sample_image(f"{name}.jpg"))
    else:
        img = np.asarray(getattr(skimage.data, name)())
    if img.dtype != np.uint8:
        img = np.clip(img * (255.0 if img.max() <= 1 else 1.0), 0, 255).astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = img[..., :3]
    h, w = img.shape[:2]
    s = min(1.0, max_side / max(h, w))
    if s < 1:
        img = np.asarray(Image.fromarray(img).resize((round(w * s), round(h * s)), Image.BILINEAR))
    return np.ascontiguousarray(img)


def procedural_background(rng: np.random.Generator, sizes: tuple[int, int] = (160, 480)) -> np.ndarray:
    w, h = (int(v) for v in rng.integers(sizes[0], sizes[1] + 1, 2))
    return cluttered_background(rng, w, h)


def render_object(category: str, seed: int, index: int, size: int = 192) -> np.ndarray:
    """One procedural shape of ``category`` from a random camera -> RGBA uint8 cropped to its alpha box."""
    rng = shape_rng(seed, category, index)
    mesh, roles = make_shape(category, rng)
    colors = palette(rng)
    cam = (float(rng.uniform(0, 360)), float(rng.uniform(5, 35)), 0.0, float(rng.uniform(0.72, 0.85)))
    rgba = render_views(mesh, roles, colors, [cam], size=size)[0]  # (S, S, 4)
    ys, xs = np.nonzero(rgba[..., 3])
    return rgba[ys.min():ys.max() + 1, xs.min():xs.max() + 1]


def _occluder(h: int, w: int, box, rng: np.random.Generator) -> np.ndarray:
    """bool (H, W): an ellipse or a band over 15-40 % of the object's box, entering from one side."""
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    img = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(img)
    side = int(rng.integers(0, 4))
    depth = float(rng.uniform(0.15, 0.4))
    if side == 0:
        rect = (x0 - bw, y1 - depth * bh, x1 + bw, y1 + bh)  # from below
    elif side == 1:
        rect = (x0 - bw, y0 - bh, x1 + bw, y0 + depth * bh)  # from above
    elif side == 2:
        rect = (x0 - bw, y0 - bh, x0 + depth * bw, y1 + bh)  # from the left
    else:
        rect = (x1 - depth * bw, y0 - bh, x1 + bw, y1 + bh)  # from the right
    if rng.uniform() < 0.5:
        draw.ellipse([int(v) for v in rect], fill=255)
    else:
        draw.rectangle([int(v) for v in rect], fill=255)
    return np.asarray(img) > 0


def composite(background: np.ndarray, rgba: np.ndarray, rng: np.random.Generator, frac: float,
              occlude: bool = False) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]]:
    """Paste ``rgba`` onto a copy of ``background`` -> (photo (H, W, 3), visible mask (H, W), its box)."""
    h, w = background.shape[:2]
    oh, ow = rgba.shape[:2]
    scale = frac * min(h, w) / max(oh, ow)
    nw, nh = max(2, round(ow * scale)), max(2, round(oh * scale))
    obj = np.asarray(Image.fromarray(rgba).resize((nw, nh), Image.LANCZOS if scale < 1 else Image.BILINEAR))
    ox, oy = int(rng.integers(0, w - nw + 1)), int(rng.integers(0, h - nh + 1))
    mask = np.zeros((h, w), bool)
    mask[oy:oy + nh, ox:ox + nw] = obj[..., 3] >= 128
    out = background.copy()
    a = obj[..., 3:].astype(np.float32) / 255.0
    win = out[oy:oy + nh, ox:ox + nw].astype(np.float32)
    out[oy:oy + nh, ox:ox + nw] = np.clip(np.rint(obj[..., :3] * a + win * (1 - a)), 0, 255).astype(np.uint8)
    if occlude:
        cover = _occluder(h, w, (ox, oy, ox + nw, oy + nh), rng)
        if (mask & ~cover).sum() >= 0.4 * mask.sum():  # keep at least 40 % of the object visible
            out[cover] = background[cover]
            mask &= ~cover
    ys, xs = np.nonzero(mask)
    return out, mask, (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)


def make_scene(category: str, background: np.ndarray, seed: int, index: int,
               frac_range: tuple[float, float] = (0.1, 0.5), occlude_p: float = 0.3):
    """One object of ``category`` (shape ``index`` of ``seed``) on ``background`` -> (photo, mask, box)."""
    rng = np.random.default_rng([int(seed), 7, int(index), len(category)])
    rgba = render_object(category, seed, index)
    frac = float(rng.uniform(*frac_range))
    return composite(background, rgba, rng, frac, occlude=bool(rng.uniform() < occlude_p))


def benchmark_scenes(per_class: int, photos=HELD_OUT_PHOTOS, classes=None, seed: int = BENCH_SHAPE_SEED):
    """The grounding benchmark: ``per_class`` scenes per class, each on the next photo of ``photos``
    in turn -> list of dicts (category, photo, image (H, W, 3), mask (H, W), box)."""
    from mesc3d.categories import ALL_NAMES

    bgs = {n: photo(n) for n in photos}
    out = []
    for ci, cat in enumerate(classes or ALL_NAMES):
        for k in range(per_class):
            name = photos[(ci + k) % len(photos)]
            img, mask, box = make_scene(cat, bgs[name], seed, k)
            out.append({"category": cat, "photo": name, "image": img, "mask": mask, "box": box})
    return out
