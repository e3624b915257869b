"""Text-guided object boxes and masks for in-the-wild photos (``mesc3d reconstruct``).

Three ways from (photo, text) to a binary object mask; all take and return numpy arrays:

- **grounding box -> GrabCut** (embedded default, real weights offline): ``text_to_classes`` picks
  the ImageNet classes whose MiniLM name embeddings are closest to the text; the score maps (the
  grounding head, the contrastive class activation map) are in ``mesc3d.models.grounding_head``;
  ``largest_component_box`` finds the region of a thresholded map holding the most score;
  ``grabcut_mask`` refines box -> mask (OpenCV GrabCut, initialised with the rectangle).
- **CLIPSeg** (text -> mask) and **SAM** (box -> mask) wrappers around ``transformers`` models, which
  the engine loads with ``from_pretrained(DIR, local_files_only=True)`` (tests build them from tiny
  configs with random weights).

Boxes are ``(x0, y0, x1, y1)`` integer pixel corners, x1/y1 exclusive; masks are bool (H, W).
Models never read files: name tables and weights are handed in by the engine.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from mesc3d.registries import CLIP_MEAN, CLIP_STD
from mesc3d.registries import IMAGENET_MEAN as SAM_MEAN
from mesc3d.registries import IMAGENET_STD as SAM_STD


def _to_tensor01(rgb: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (1, 3, H, W) float in [0, 1]."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {rgb.shape} {rgb.dtype}")
    return torch.from_numpy(np.array(rgb, copy=True)).permute(2, 0, 1)[None].float().div_(255.0)


def clip_box(box, width: int, height: int) -> tuple[int, int, int, int]:
    """Round and clip a box to the image; at least 1 px wide and high."""
    x0, y0, x1, y1 = (float(v) for v in box)
    x0, x1 = sorted((x0, x1))
    y0, y1 = sorted((y0, y1))
    x0 = int(np.clip(np.floor(x0), 0, width - 1))
    y0 = int(np.clip(np.floor(y0), 0, height - 1))
    x1 = int(np.clip(np.ceil(x1), x0 + 1, width))
    y1 = int(np.clip(np.ceil(y1), y0 + 1, height))
    return x0, y0, x1, y1


def centre_box(width: int, height: int, frac: float = 0.6) -> tuple[int, int, int, int]:
    """Fallback box: the central ``frac`` of each side."""
    mx, my = width * (1 - frac) / 2, height * (1 - frac) / 2
    return clip_box((mx, my, width - mx, height - my), width, height)


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Tight box of a bool (H, W) mask, or None when it is empty."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def box_iou(a, b) -> float:
    """IoU of two ``(x0, y0, x1, y1)`` boxes (x1/y1 exclusive)."""
    iw = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - iw * ih
    return float(iw * ih / union) if union > 0 else 0.0


# ------------------------------------------------------------------ text -> ImageNet classes
def text_to_classes(text_emb: torch.Tensor, name_table: torch.Tensor, k: int = 3,
                    min_similarity: float = 0.45) -> tuple[list[int], list[float]]:
    """Closest ImageNet classes to a text.

    text_emb (D,) and name_table (1000, D), both L2-normalised MiniLM sentence embeddings.
    Returns (class ids, cosines) of the top ``k`` classes with cosine >= ``min_similarity``
    (the best one is kept if it is within 0.1 of the threshold of the others); empty when the
    best cosine is below ``min_similarity`` (the text matches no ImageNet class).
    """
    if text_emb.dim() != 1 or name_table.dim() != 2 or name_table.shape[1] != text_emb.shape[0]:
        raise ValueError(f"text_emb (D,) and name_table (C, D) expected, got {tuple(text_emb.shape)} "
                         f"and {tuple(name_table.shape)}")
    sims = name_table.float() @ text_emb.float()  # (C,)
    top = torch.topk(sims, min(k, sims.numel()))
    ids = [int(i) for i, s in zip(top.indices, top.values) if float(s) >= min_similarity]
    return ids, [float(sims[i]) for i in ids]


# ------------------------------------------------------------------ score map -> box
def largest_component_box(binary: np.ndarray, weight: np.ndarray | None = None) -> tuple[int, int, int, int] | None:
    """Box of the connected component of ``binary`` (H, W) with the largest total ``weight``."""
    import cv2

    n, labels, stats, _ = cv2.connectedComponentsWithStats(binary.astype(np.uint8), connectivity=8)
    if n <= 1:
        return None
    if weight is None:
        best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    else:
        sums = np.bincount(labels.ravel(), weights=weight.ravel(), minlength=n)
        best = 1 + int(np.argmax(sums[1:]))
    x, y, w, h = (int(stats[best, k]) for k in (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP, cv2.CC_STAT_WIDTH,
                                                 cv2.CC_STAT_HEIGHT))
    return x, y, x + w, y + h


# ------------------------------------------------------------------ GrabCut
def grabcut_mask(rgb: np.ndarray, box, iterations: int = 5, max_side: int = 320) -> np.ndarray:
    """Box -> bool (H, W) object mask with OpenCV GrabCut initialised from the rectangle.

    The photo is downscaled so its longer side is at most ``max_side`` (GrabCut is O(pixels)) and
    the mask upscaled back; the largest connected component is kept.  When GrabCut finds nothing
    (or the box is degenerate) the filled box is returned.
    """
    import cv2

    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = clip_box(box, w, h)
    filled = np.zeros((h, w), bool)
    filled[y0:y1, x0:x1] = True
    scale = min(1.0, max_side / max(h, w))
    sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
    small = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA) if scale < 1 else rgb
    rx0, ry0 = int(x0 * scale), int(y0 * scale)
    rx1, ry1 = max(rx0 + 1, int(round(x1 * scale))), max(ry0 + 1, int(round(y1 * scale)))
    # GrabCut learns the background from outside the rectangle: keep a margin inside the border
    m = max(1, round(0.02 * max(sw, sh)))
    rx0, ry0 = max(rx0, m), max(ry0, m)
    rx1, ry1 = max(rx0 + 1, min(rx1, sw - m)), max(ry0 + 1, min(ry1, sh - m))
    rect = (rx0, ry0, rx1 - rx0, ry1 - ry0)
    if rect[2] < 3 or rect[3] < 3:
        return filled
    gc = np.zeros((sh, sw), np.uint8)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)  # GrabCut's GMM initialisation uses OpenCV's RNG: deterministic masks
    try:
        cv2.grabCut(np.ascontiguousarray(small[..., ::-1]), gc, rect, bgd, fgd, iterations, cv2.GC_INIT_WITH_RECT)
    except cv2.error:
        return filled
    fg = ((gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)).astype(np.uint8)
    if fg.sum() == 0:
        return filled
    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    fg = (labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))).astype(np.uint8)
    if scale < 1:
        fg = cv2.resize(fg, (w, h), interpolation=cv2.INTER_NEAREST)
    return fg.astype(bool) & filled


# ------------------------------------------------------------------ CLIPSeg (text -> mask)
class ClipSegMasker:
    """``transformers`` CLIPSegForImageSegmentation + a tokenizer: (photo, text) -> bool mask.

    ``tokenizer(text) -> list[int]`` (ids incl. special tokens); ``threshold`` on sigmoid(logits).
    """

    def __init__(self, model, tokenizer, threshold: float = 0.4):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.threshold = float(threshold)
        self.size = int(model.config.vision_config.image_size)

    @torch.no_grad()
    def probability(self, rgb: np.ndarray, text: str) -> np.ndarray:
        """(H, W, 3) uint8 -> (H, W) float object probability."""
        h, w = rgb.shape[:2]
        x = F.interpolate(_to_tensor01(rgb), size=(self.size, self.size), mode="bilinear", align_corners=False)
        x = (x - torch.tensor(CLIP_MEAN)[None, :, None, None]) / torch.tensor(CLIP_STD)[None, :, None, None]
        ids = torch.tensor([list(self.tokenizer(text))], dtype=torch.long)  # (1, L)
        logits = self.model(input_ids=ids, pixel_values=x).logits  # (1, s, s) or (s, s)
        logits = logits.reshape(1, 1, *logits.shape[-2:])
        prob = torch.sigmoid(F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False))[0, 0]
        return prob.numpy()

    def __call__(self, rgb: np.ndarray, text: str) -> np.ndarray:
        prob = self.probability(rgb, text)
        return prob >= self.threshold


# ------------------------------------------------------------------ SAM (box -> mask)
class SamBoxMasker:
    """``transformers`` SamModel: (photo, box) -> bool mask (the box prompt, single-mask output).

    Preprocessing as SAM's: longer side resized to the encoder's ``image_size``, ImageNet
    normalisation, zero padding to a square; the low-resolution mask is upsampled, unpadded and
    resized back to the photo.
    """

    def __init__(self, model):
        self.model = model.eval()
        self.size = int(model.config.vision_config.image_size)

    @torch.no_grad()
    def __call__(self, rgb: np.ndarray, box) -> np.ndarray:
        h, w = rgb.shape[:2]
        s = self.size / max(h, w)
        nh, nw = max(1, round(h * s)), max(1, round(w * s))
        x = F.interpolate(_to_tensor01(rgb), size=(nh, nw), mode="bilinear", align_corners=False)
        x = (x - torch.tensor(SAM_MEAN)[None, :, None, None]) / torch.tensor(SAM_STD)[None, :, None, None]
        x = F.pad(x, (0, self.size - nw, 0, self.size - nh))  # (1, 3, S, S)
        x0, y0, x1, y1 = clip_box(box, w, h)
        boxes = torch.tensor([[[x0 * s, y0 * s, x1 * s, y1 * s]]], dtype=torch.float32)  # (1, 1, 4)
        out = self.model(pixel_values=x, input_boxes=boxes, multimask_output=False)
        low = out.pred_masks.reshape(1, 1, *out.pred_masks.shape[-2:])  # (1, 1, m, m)
        full = F.interpolate(low, size=(self.size, self.size), mode="bilinear", align_corners=False)
        full = F.interpolate(full[..., :nh, :nw], size=(h, w), mode="bilinear", align_corners=False)[0, 0]
        return (full > 0).numpy()
