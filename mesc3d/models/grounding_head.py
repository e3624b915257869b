"""Where is the named object: EfficientNet-Lite0 feature pyramid, a small class head, fused score maps.

An EfficientNet-Lite0 pass over the photo (longer side ``GRID_SIDE`` pixels, aspect kept; for the
head's photo-wide map the sides ``MAP_SIDES``) gives

- ``f8`` (40 ch, stride 8, average-pooled to stride 16), ``f16`` (112 ch, stride 16) and ``f32``
  (320 ch, stride 32, upsampled to stride 16): concatenated, the ``PYRAMID_DIM``-channel input of
  the **grounding head** (``GroundingHead``: an average of small nets, each 1x1 conv -> 3x3 conv ->
  1x1 conv to background + the class vocabulary), trained by ``mesc3d.engine.grounding_train`` on
  procedural renders composited over real photos.  ``softmax(head)[c]`` (h, w) is the probability
  that a cell shows class ``c``; ``head_score`` averages it with the probability of any object,
  and ``multiscale_head_score`` averages that map over the photo at the longer sides ``MAP_SIDES``
  (one more pass, at 1024 px: a small or thin object spans more cells).
- ``feats`` (1280 ch, stride 32) and the ImageNet logits: the **contrastive class activation map**
  of the text's ImageNet classes, ``relu(CAM(text classes) - CAM(the photo's own top classes that
  are not the text's))``, normalised to a peak of 1 -- a map that ignores what the photo is mostly
  about when the text names something else.

``score_box(score, threshold, pad, grow)`` turns an (H, W) score map into a box: the connected
region above ``threshold * peak`` holding the most score (grown into the area above ``grow * peak``
around it); ``candidates`` / ``windows`` / ``zoom_scores`` give the
best regions a second, zoomed look in one batch.  All maps are numpy (H, W) at photo resolution.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from mesc3d.models.grounding import clip_box, largest_component_box
from mesc3d.safe_load import nonfinite_tensors

GRID_SIDE = 512  # longer side of the photo as the network sees it (a multiple of 32)
# the head's photo-wide map: the mean of its maps with the photo at these longer sides.  At 1024 px a
# small or thin object spans four times the cells of the 512-px map (the head was trained at 512 px
# on objects of 6-90 % of the side, so an object of 10-45 % of a photo looks to it like one of
# 20-90 %); chosen on a validation split over 512, 768, 1024, 1280 and the mean of 512 and 1024
MAP_SIDES = (1024,)
PYRAMID_DIM = 40 + 112 + 320
HEAD_VERSION = 4  # 4: averaged members, two more photos (3: hard background mining); older heads are retrained


def network_input(rgb: np.ndarray, side: int = GRID_SIDE) -> torch.Tensor:
    """(H, W, 3) uint8 -> (1, 3, h, w) in [-1, 1], longer side ``side``, both sides multiples of 32."""
    h, w = rgb.shape[:2]
    s = side / max(h, w)
    nh, nw = max(32, int(round(h * s / 32)) * 32), max(32, int(round(w * s / 32)) * 32)
    x = torch.from_numpy(np.array(rgb, copy=True)).permute(2, 0, 1)[None].float().div_(255.0)
    x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
    return x * 2.0 - 1.0


@torch.no_grad()
def pyramid(net, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """EfficientNet-Lite0 on x (B, 3, h, w) in [-1, 1] -> (pyr (B, PYRAMID_DIM, h/16, w/16),
    feats (B, 1280, h/32, w/32), ImageNet logits (B, 1000))."""
    y = net.bn1(net.conv_stem(x))
    outs = []
    for i, block in enumerate(net.blocks):
        y = block(y)
        if i in (2, 4, 6):
            outs.append(y)
    f8, f16, f32 = outs  # (B, 40, h/8, w/8), (B, 112, h/16, w/16), (B, 320, h/32, w/32)
    size = f16.shape[-2:]
    pyr = torch.cat([F.adaptive_avg_pool2d(f8, size), f16,
                     F.interpolate(f32, size=size, mode="bilinear", align_corners=False)], 1)
    feats = net.bn2(net.conv_head(f32))  # (B, 1280, h/32, w/32)
    logits = net.classifier(feats.mean(dim=(2, 3)))  # (B, 1000)
    return pyr, feats, logits


def _head_net(width: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(PYRAMID_DIM, width, 1), nn.ReLU(inplace=True),
        nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(width, n_out, 1))


class GroundingHead(nn.Module):
    """(B, PYRAMID_DIM, h, w) -> (B, 1 + len(classes), h, w) logits; channel 0 is background.

    ``members`` small nets (1x1 conv -> 3x3 conv -> 1x1 conv) trained from different seeds: one
    member returns its logits, several the log of their mean softmax (an ensemble: trainings of one
    recipe differ by several points of the grounding benchmark, their average less)."""

    def __init__(self, classes: list[str], width: int = 64, members: int = 1):
        super().__init__()
        if members < 1:
            raise ValueError(f"a grounding head needs at least one member, got {members}")
        self.classes = list(classes)
        self.width = int(width)
        self.members = nn.ModuleList(_head_net(width, 1 + len(classes)) for _ in range(members))

    def forward(self, pyr: torch.Tensor) -> torch.Tensor:
        if len(self.members) == 1:
            return self.members[0](pyr)
        prob = torch.stack([m(pyr).softmax(1) for m in self.members]).mean(0)  # (B, 1 + C, h, w)
        return prob.clamp_min(1e-12).log()

    @classmethod
    def ensemble(cls, heads: list["GroundingHead"]) -> "GroundingHead":
        """Heads of the same classes and width -> one head averaging all their members."""
        first = heads[0]
        if any(h.classes != first.classes or h.width != first.width for h in heads):
            raise ValueError("grounding heads of different classes or widths cannot be averaged")
        out = cls(first.classes, first.width, sum(len(h.members) for h in heads))
        out.members = nn.ModuleList(m for h in heads for m in h.members)
        return out.eval()

    def export(self) -> dict:
        return {"version": HEAD_VERSION, "classes": self.classes, "width": self.width,
                "members": len(self.members), "state": self.state_dict()}

    @classmethod
    def from_export(cls, blob: dict) -> "GroundingHead":
        if not isinstance(blob, dict) or blob.get("version") != HEAD_VERSION:
            raise ValueError(f"not a version-{HEAD_VERSION} grounding head")
        head = cls(list(blob["classes"]), int(blob["width"]), int(blob["members"]))
        head.load_state_dict(blob["state"], strict=True)
        bad = nonfinite_tensors(head.state_dict())
        if bad:
            raise ValueError(f"non-finite weights in {bad[0]}")
        return head.eval()


def _upsample(m: torch.Tensor, hw: tuple[int, int]) -> np.ndarray:
    """(h, w) -> (H, W) numpy, bilinear."""
    return F.interpolate(m[None, None].float(), size=hw, mode="bilinear", align_corners=False)[0, 0].numpy()


@torch.no_grad()
def head_score(head: GroundingHead, pyr: torch.Tensor, class_index: int, hw) -> np.ndarray:
    """``(P(object) + P(class ``class_index``)) / 2`` per cell, at photo size (H, W): the object
    evidence keeps a whole object even where the head hesitates between related classes (bed /
    sofa), the class evidence picks the text's object among several."""
    prob = head(pyr).softmax(1)[0]  # (1 + C, h, w)
    return _upsample(0.5 * (1.0 - prob[0]) + 0.5 * prob[1 + class_index], hw)


@torch.no_grad()
def multiscale_head_score(net, head: GroundingHead, rgb: np.ndarray, pyr: torch.Tensor, class_index: int,
                          sides=MAP_SIDES) -> np.ndarray:
    """The mean of ``head_score`` over the photo (H, W, 3) at each longer side of ``sides``, at photo
    size (H, W); ``pyr`` is the ``GRID_SIDE`` pass's pyramid, reused if ``GRID_SIDE`` is one of them."""
    hw = rgb.shape[:2]
    maps = [head_score(head, pyr if side == GRID_SIDE else pyramid(net, network_input(rgb, side))[0],
                       class_index, hw) for side in sides]
    return np.mean(maps, axis=0)


def among_top(logits: torch.Tensor, class_ids: list[int], k: int) -> bool:
    """Is one of ``class_ids`` among the ``k`` most probable classes of ``logits`` (1, 1000)?"""
    top = torch.topk(logits[0].detach(), k).indices.tolist()
    return any(int(i) in top for i in class_ids)


@torch.no_grad()
def contrastive_cam(net, feats: torch.Tensor, logits: torch.Tensor, class_ids: list[int], hw,
                    n_other: int = 5) -> np.ndarray:
    """relu(CAM(class_ids) - CAM(the top ``n_other`` other classes)), peak 1, at photo size (H, W)."""
    if not class_ids:
        raise ValueError("contrastive_cam needs at least one class id")
    probs = logits.softmax(-1)[0]  # (1000,)
    f = feats[0]  # (1280, h, w)

    def cam(ids):
        w = net.classifier.weight[ids]  # (k, 1280)
        maps = torch.relu(torch.einsum("kc,chw->khw", w, f) + net.classifier.bias[ids][:, None, None])
        p = probs[ids] / probs[ids].sum().clamp_min(1e-12)
        return (p[:, None, None] * maps).sum(0)  # (h, w)

    own = cam(class_ids)
    others = [int(i) for i in torch.argsort(probs, descending=True)[: n_other + len(class_ids)]
              if int(i) not in class_ids][:n_other]
    diff = torch.relu(own - cam(others)) if others else own
    if float(diff.max()) <= 0:
        diff = own
    return _upsample(diff / diff.max().clamp_min(1e-12), hw)


def score_box(score: np.ndarray, threshold: float = 0.5, pad: float = 0.03,
              grow: float | None = None) -> tuple[int, int, int, int] | None:
    """(H, W) score map -> the padded box of the connected region above ``threshold * peak`` holding
    the most score, or None when the map is flat zero.  With ``grow`` (< ``threshold``) the regions
    are the connected areas above ``grow * peak`` and the one holding the most score above
    ``threshold * peak`` wins (hysteresis): the weaker cells along a thin object join its strongest."""
    peak = float(score.max())
    if peak <= 0:
        return None
    core = score >= threshold * peak
    if grow is not None and grow < threshold:
        box = largest_component_box(score >= grow * peak, np.where(core, score, 0.0))
    else:
        box = largest_component_box(core, score)
    if box is None:
        return None
    h, w = score.shape
    x0, y0, x1, y1 = box
    px, py = pad * (x1 - x0), pad * (y1 - y0)
    return clip_box((x0 - px, y0 - py, x1 + px, y1 + py), w, h)


# ------------------------------------------------------------------ second look: zoomed windows
# A photo-wide map sees a small object in two or three 16-pixel cells, and a real object that
# resembles the text's class as strongly as the object itself.  ``candidates`` takes the ``k``
# connected regions above ``threshold * peak`` holding the most score; ``windows`` puts a square
# around each (``context`` x its longer side, at least ``min_side`` px, inside the photo);
# ``zoom_scores`` runs EfficientNet-Lite0 + the head on all windows as one batch of ``ZOOM_SIDE``
# px crops and returns each window's score map; the engine keeps the window whose map peaks highest
# and looks once more at a window centred on the box it finds there.
ZOOM_SIDE = 384  # a 16-px cell is 1/24 of the window: boxes of small objects are tighter than at 256 px


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
    x = torch.from_numpy(np.array(rgb, copy=True)).permute(2, 0, 1).float().div_(255.0)  # (3, H, W)
    batch = torch.stack([F.interpolate(x[None, :, t:t + s, l:l + s], size=(side, side), mode="bilinear",
                                       align_corners=False, antialias=True)[0] for l, t, s in wins])
    pyr, _, _ = pyramid(net, batch * 2.0 - 1.0)  # (K, D, side/16, side/16)
    return [head_score(head, pyr[i:i + 1], class_index, (s, s)) for i, (_, _, s) in enumerate(wins)]


def box_in_window(box, win, hw) -> tuple[int, int, int, int]:
    """A box in window coordinates -> photo coordinates."""
    left, top, _ = win
    x0, y0, x1, y1 = box
    return clip_box((x0 + left, y0 + top, x1 + left, y1 + top), hw[1], hw[0])
