"""Image loading, cropping and resizing for the two layouts (numpy + PIL; no torch).

Background convention (one rule for real and synthetic data): a ShapeNet render is RGBA with a
transparent background; we composite it over WHITE using its alpha (``composite_white``) before
cropping.  The official code keeps the stored RGB channels of the RGBA file (``image[:3]``), which
makes the background whatever colour the renderer left under alpha 0; compositing makes the result
independent of that (our synthetic renders store white there, so for them both rules coincide).
Pix3D photos keep their cluttered background unless the mask is applied, in which case the
background becomes the same white (``apply_mask``); padding outside the photo is white too.

Resizing is PIL bilinear on uint8 (what torchvision's ``Resize`` does on PIL images).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from mesc3d.errors import BadInputError

WHITE = 255


def load_rgba(path: str | Path) -> np.ndarray:
    """A render -> uint8 (H, W, 4); anything but an RGBA image is ``BadInputError``."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError(path, "missing rendering")
    try:
        with Image.open(path) as im:
            if im.mode != "RGBA":
                raise BadInputError(path, f"renders must be RGBA PNGs, got mode {im.mode!r} ({im.format})")
            return np.asarray(im.convert("RGBA"))
    except BadInputError:
        raise
    except Exception as err:
        raise BadInputError(path, f"not a readable image ({type(err).__name__}: {err})") from err


def load_rgb(path: str | Path) -> np.ndarray:
    """A photo (any PIL mode) -> uint8 (H, W, 3)."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError(path, "image file does not exist")
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except Exception as err:
        raise BadInputError(path, f"not a readable image ({type(err).__name__}: {err})") from err


def load_mask(path: str | Path) -> np.ndarray:
    """A mask PNG -> bool (H, W) (non-zero = object)."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError(path, "mask file does not exist")
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("L")) > 127
    except Exception as err:
        raise BadInputError(path, f"not a readable mask ({type(err).__name__}: {err})") from err


def composite_white(rgba: np.ndarray) -> np.ndarray:
    """(H, W, 4) uint8 -> (H, W, 3) uint8 over a white background."""
    if rgba.ndim != 3 or rgba.shape[2] != 4:
        raise ValueError(f"composite_white expects (H, W, 4), got {rgba.shape}")
    a = rgba[..., 3:].astype(np.float32) / 255.0
    out = rgba[..., :3].astype(np.float32) * a + WHITE * (1.0 - a)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def apply_mask(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Background (mask False) -> white.  rgb (H, W, 3), mask (H, W)."""
    if mask.shape != rgb.shape[:2]:
        raise ValueError(f"mask {mask.shape} does not match image {rgb.shape[:2]}")
    return np.where(mask[..., None], rgb, np.uint8(WHITE))


def crop(img: np.ndarray, top: int, left: int, size: int) -> np.ndarray:
    """(H, W, C) -> (size, size, C); the window must lie inside the image."""
    h, w = img.shape[:2]
    if not (0 <= top <= h - size and 0 <= left <= w - size):
        raise ValueError(f"crop window {size} at ({top}, {left}) exceeds image {h}x{w}")
    return img[top:top + size, left:left + size]


def center_offset(extent: int, size: int) -> int:
    return max(0, (extent - size) // 2)


def resize(img: np.ndarray, size: int) -> np.ndarray:
    """(h, w, 3) uint8 -> (size, size, 3) uint8, PIL bilinear."""
    if img.shape[0] == size and img.shape[1] == size:
        return img
    return np.asarray(Image.fromarray(img).resize((size, size), Image.BILINEAR))


def bbox_square(bbox) -> tuple[int, int, int]:
    """[x0, y0, x1, y1] -> (left, top, side): the square of side max(w, h) centred on the box."""
    x0, y0, x1, y1 = (float(v) for v in bbox)
    side = max(x1 - x0, y1 - y0, 1.0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    side_i = int(round(side))
    return int(round(cx - side_i / 2)), int(round(cy - side_i / 2)), side_i


def square_crop(img: np.ndarray, bbox) -> np.ndarray:
    """Crop the bbox square out of ``img`` (H, W, 3); parts outside the image are white."""
    left, top, side = bbox_square(bbox)
    h, w = img.shape[:2]
    out = np.full((side, side, img.shape[2]), WHITE, dtype=img.dtype)
    sx0, sy0 = max(left, 0), max(top, 0)
    sx1, sy1 = min(left + side, w), min(top + side, h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - top:sy1 - top, sx0 - left:sx1 - left] = img[sy0:sy1, sx0:sx1]
    return out
