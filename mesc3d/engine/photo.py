"""In-the-wild photo input for ``mesc3d reconstruct``: loading with every mode fixed, and the crop.

``load_photo(path) -> (rgb uint8 (H, W, 3), notes)`` accepts what cameras and the web produce and
normalises it: EXIF orientation applied (``ImageOps.exif_transpose``), 16-bit greyscale/RGB scaled
to 8 bits (not clipped), CMYK converted, palette / LA / RGBA composited over white.  It refuses, with
one line naming the file, anything that is not an image, is smaller than ``MIN_SIDE`` pixels, holds
more than ``MAX_PIXELS`` pixels (after JPEG draft scaling) or is fully transparent; ``max_side``
downscales a large photo while decoding.

``object_crop(rgb, mask, fill, size)`` builds the model input like the training renders: the mask
applied on white, a square centred on the mask's box whose side makes the object's longer side
``fill`` of the frame (``TRAIN_FILL``, measured on the renders), resized to ``size``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mesc3d.data import images as im
from mesc3d.errors import BadInputError

MIN_SIDE = 16
MAX_PIXELS = 50_000_000  # decoded pixels (after JPEG draft scaling); more is refused in one line
MAX_SIDE = 4096  # photo mode: longer photo side after downscaling on decode
# Longer side of the object's box / side of the 127-px crop, over the R2N2-style training renders
# (mesc3d synth, centre crop): mean 0.666, median 0.677, 10-90% 0.52-0.81 (240 renders).
TRAIN_FILL = 0.67
PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif")


def _to_rgb8(img: Image.Image, notes: list[str]) -> np.ndarray:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
        notes.append(f"{mode} image scaled from 0..{int(top)} to 8 bits")
        g = np.clip(np.rint(arr / top * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(g[..., None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        notes.append(f"{mode} image composited over white")
        return im.composite_white(np.asarray(img.convert("RGBA")))
    if mode == "CMYK":
        notes.append("CMYK image converted to RGB")
    elif mode == "P":
        notes.append("palette image converted to RGB")
    return np.asarray(img.convert("RGB"))


def load_photo(path: str | Path, max_side: int | None = None) -> tuple[np.ndarray, list[str]]:
    """A photo file -> (uint8 (H, W, 3) RGB, notes on the conversions made).

    More than ``MAX_PIXELS`` decoded pixels is refused in one line (a JPEG is first decoded at 1/2,
    1/4 or 1/8 scale when that brings it under); with ``max_side`` a larger photo is downscaled while
    decoding (JPEG draft, else ``Image.reduce``) so its longer side is at most ``max_side``."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError(path, "photo does not exist")
    notes: list[str] = []
    try:
        with warnings.catch_warnings():  # PIL's bomb warning: our own pixel limit speaks instead
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                rgb = _decode(path, img, max_side, notes)
    except Image.DecompressionBombError as err:
        raise BadInputError(path, f"image is too large to decode safely ({str(err)[:160]}); the limit is "
                            f"{MAX_PIXELS / 1e6:.0f} megapixels: downscale it first") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise BadInputError(path, f"not a readable image ({type(err).__name__}: {str(err)[:120]})") from None
    h, w = rgb.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise BadInputError(path, f"image is {w}x{h} pixels; need at least {MIN_SIDE}x{MIN_SIDE}")
    return rgb, notes


def _decode(path: Path, img: Image.Image, max_side: int | None, notes: list[str]) -> np.ndarray:
    w, h = img.size
    if img.format == "JPEG" and (w * h > MAX_PIXELS or (max_side and max(w, h) > max_side)):
        want = max(max_side or 0, 1)
        for scale in (8, 4, 2):  # the largest JPEG scale that still meets the limits
            if w * h / scale**2 <= MAX_PIXELS and (not max_side or max(w, h) / scale >= want):
                img.draft(img.mode, (w // scale, h // scale))
                notes.append(f"{w}x{h} JPEG decoded at 1/{scale} scale")
                break
    if img.size[0] * img.size[1] > MAX_PIXELS:
        raise BadInputError(path, f"image is {w}x{h} = {w * h / 1e6:.0f} megapixels; the limit is "
                            f"{MAX_PIXELS / 1e6:.0f}: downscale it first")
    img.load()
    orientation = img.getexif().get(0x0112, 1)
    if max_side and max(img.size) > max_side:
        factor = -(-max(img.size) // max_side)  # ceil: longer side <= max_side
        try:
            img = img.reduce(factor)
        except ValueError:  # a mode reduce() does not take (palette, 16-bit): convert first
            img = img.convert("RGBA" if "A" in img.mode or "transparency" in img.info else "RGB").reduce(factor)
        notes.append(f"{w}x{h} photo reduced by {factor} to {img.size[0]}x{img.size[1]}")
        img.getexif()[0x0112] = orientation
    oriented = ImageOps.exif_transpose(img)
    if orientation not in (None, 1):
        notes.append(f"EXIF orientation {orientation} applied")
    if "A" in oriented.mode or (oriented.mode == "P" and "transparency" in oriented.info):
        alpha = np.asarray(oriented.convert("RGBA"))[..., 3]
        if not alpha.any():
            raise BadInputError(path, "the photo is fully transparent (alpha 0 everywhere): nothing to see")
    return _to_rgb8(oriented, notes)


def load_override_mask(path: str | Path, shape: tuple[int, int]) -> np.ndarray:
    """``--mask`` file -> bool (H, W); its size must equal the photo's (after EXIF rotation)."""
    mask = im.load_mask(path)
    if mask.shape != tuple(shape):
        raise BadInputError(path, f"mask is {mask.shape[1]}x{mask.shape[0]} but the photo is "
                            f"{shape[1]}x{shape[0]} (width x height)")
    if not mask.any():
        raise BadInputError(path, "mask is empty (no pixel > 127)")
    return mask


def parse_box(text: str, width: int, height: int) -> tuple[int, int, int, int]:
    """``"x0,y0,x1,y1"`` -> a box inside the photo (one-line error otherwise)."""
    from mesc3d.errors import UserFacingError

    try:
        x0, y0, x1, y1 = (float(v) for v in text.split(","))
    except ValueError:
        raise UserFacingError(f"--box {text!r}: expected four numbers x0,y0,x1,y1") from None
    if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
        raise UserFacingError(f"--box {text!r}: must satisfy 0 <= x0 < x1 <= {width} and 0 <= y0 < y1 <= {height}")
    return int(x0), int(y0), int(round(x1)), int(round(y1))


def crop_window(box, fill: float) -> tuple[int, int, int]:
    """Object box -> (left, top, side) of the square centred on it with longer side = fill * side."""
    if not 0 < fill <= 1:
        raise ValueError(f"fill must be in (0, 1], got {fill}")
    x0, y0, x1, y1 = (float(v) for v in box)
    side = max(x1 - x0, y1 - y0, 1.0) / fill
    return im.bbox_square(((x0 + x1 - side) / 2, (y0 + y1 - side) / 2, (x0 + x1 + side) / 2, (y0 + y1 + side) / 2))


def object_crop(rgb: np.ndarray, mask: np.ndarray, fill: float = TRAIN_FILL, size: int = 224) -> np.ndarray:
    """Mask on white, square around the mask with the object ``fill`` of the frame -> (size, size, 3)."""
    from mesc3d.models.grounding import mask_box

    box = mask_box(mask)
    if box is None:
        raise ValueError("object_crop: the mask is empty")
    left, top, side = crop_window(box, fill)
    return im.resize(im.square_crop(im.apply_mask(rgb, mask), (left, top, left + side, top + side)), size)


def list_photos(path: str | Path) -> list[Path]:
    """One photo, or the photos (by suffix, sorted) of a folder."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES)
        if not files:
            raise BadInputError(path, f"folder holds no photos ({', '.join(PHOTO_SUFFIXES)})")
        return files
    if not path.exists():
        raise BadInputError(path, "photo does not exist")
    return [path]
