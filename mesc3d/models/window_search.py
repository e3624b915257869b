"""Second look at the best candidates of a score map: zoomed windows, scored again in one batch.

A photo-wide score map (``mesc3d.models.grounding_head``) sees a small object in two or three
16-pixel cells and a real object that resembles the text's class as strongly as the object itself.
``candidates(score, threshold, k)`` takes the ``k`` connected regions above ``threshold * peak``
holding the most score; ``windows`` puts a square around each (``context`` times its longer side,
at least ``min_side`` pixels, inside the photo); ``zoom_scores`` runs EfficientNet-Lite0 + the head
on all windows as one batch (``ZOOM_SIDE`` pixels each, so a small object now spans many cells) and
returns, per window, its score map at window resolution.  The engine keeps the window whose map
peaks highest and takes the box from that map, mapped back to the photo.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from mesc3d.models.grounding import clip_box
from mesc3d.models.grounding_head import head_score, pyramid

ZOOM_SIDE = 256


def candidates(score: np.ndarray, threshold: float = 0.35, k: int = 3) -> list[tuple[tuple[int, int, int, int], float]]:
    """(H, W) map -> up to ``k`` (box, score mass) of its regions above ``threshold * peak``, best first."""
    import cv2

    peak = float(score.max())
    if peak <= 0:
        return []
    n, labels, stats, _ = cv2.connectedComponentsWithStats((score >= threshold * peak).astype(np.uint8), connectivity=8)
    if n <= 1:
        return []
    mass = np.bincount(labels.ravel(), weights=score.ravel(), minlength=n)[1:]
    order = np.argsort(-mass)[:k]
    out = []
    for i in order:
        x, y, w, h = (int(stats[1 + i, c]) for c in (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP, cv2.CC_STAT_WIDTH,
                                                     cv2.CC_STAT_HEIGHT))
        out.append(((x, y, x + w, y + h), float(mass[i])))
    return out


def windows(boxes, hw: tuple[int, int], context: float = 1.8, min_side: int = 96) -> list[tuple[int, int, int]]:
    """Boxes -> square windows (left, top, side) around them, inside an (H, W) photo where it fits."""
    h, w = hw
    out = []
    for x0, y0, x1, y1 in boxes:
        side = int(min(max(context * max(x1 - x0, y1 - y0), min_side), min(h, w)))
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        left = int(np.clip(round(cx - side / 2), 0, w - side))
        top = int(np.clip(round(cy - side / 2), 0, h - side))
        out.append((left, top, side))
    return out


@torch.no_grad()
def zoom_scores(net, head, rgb: np.ndarray, wins, class_index: int, side: int = ZOOM_SIDE) -> list[np.ndarray]:
    """Each window (left, top, s) of the photo, resized to ``side`` -> its score map (s, s)."""
    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div_(255.0)  # (3, H, W)
    batch = torch.stack([F.interpolate(x[None, :, t:t + s, l:l + s], size=(side, side), mode="bilinear",
                                       align_corners=False, antialias=True)[0] for l, t, s in wins])
    pyr, _, _ = pyramid(net, batch * 2.0 - 1.0)  # (K, D, side/16, side/16)
    return [head_score(head, pyr[i:i + 1], class_index, (s, s)) for i, (_, _, s) in enumerate(wins)]


def box_in_window(box, win, hw) -> tuple[int, int, int, int]:
    """A box in window coordinates -> photo coordinates."""
    left, top, _ = win
    x0, y0, x1, y1 = box
    return clip_box((x0 + left, y0 + top, x1 + left, y1 + top), hw[1], hw[0])
