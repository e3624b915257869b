"""The in-the-wild pipeline: photo + text -> box -> mask -> training-like crop -> point cloud.

``Reconstructor(model_path, prompts_path, segmenter, ...)`` loads everything ONCE (the trained
MESC-3D, its 3DSPL priors, the ``Grounder`` of ``mesc3d.engine.ground`` -- EfficientNet-Lite0, the
grounding head, MiniLM and its ImageNet-name table -- or CLIPSeg / SAM from local folders) and
``run(rgb, text, box=None, mask=None) -> Result`` does one photo:

1. mask: ``--mask`` as given; else box (``--box``, or the grounding box: the head's map of the
   text's class fused with the contrastive CAM of its ImageNet classes; the centre box when the
   text matches neither) refined by GrabCut (default) or SAM; or CLIPSeg (text -> mask, no box);
2. crop: ``photo.object_crop`` (mask on white, object ``fill`` of the square, model input size);
3. prior: the text's row of ``prompts.pt`` if it is a class there, else the stage-1 prompt
   encoder applied to the new name (zero-shot path);
4. points = model(crop, prior)  (N, 3).

The ImageNet-name table (1000 x 384 MiniLM embeddings of the class names) and, without
``grounding_head``, the grounding head are made on first use and cached atomically under
``$MESC3D_CACHE`` (default ``~/.cache/mesc3d``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mesc3d.engine.photo import TRAIN_FILL, object_crop
from mesc3d.errors import BadInputError, ConfigError
from mesc3d.engine.ground import Grounder, TextToImageNet, cache_dir  # noqa: F401 - re-exported
from mesc3d.models import grounding as gr

log = logging.getLogger(__name__)
SEGMENTERS = ("grabcut", "sam", "clipseg")


@dataclass
class Result:
    points: np.ndarray  # (N, 3)
    mask: np.ndarray  # (H, W) bool
    box: tuple[int, int, int, int]
    crop: np.ndarray  # (S, S, 3) uint8, what the model saw
    category: str
    prior: str  # table | encoded | none
    box_source: str  # given | mask | head | head+cam | cam | centre | clipseg
    imagenet: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


class Reconstructor:
    def __init__(self, model_path, prompts_path=None, segmenter: str = "grabcut", clipseg_dir=None,
                 sam_dir=None, fill: float = TRAIN_FILL, cam_threshold: float = 0.6, min_similarity: float = 0.45,
                 effnet_weights=None, need_text_grounding: bool = True, grounding_head=None):
        from mesc3d.engine.model_io import load_trained

        if segmenter not in SEGMENTERS:
            raise ConfigError(f"--segmenter {segmenter!r} is not one of {list(SEGMENTERS)}")
        if segmenter == "clipseg" and not clipseg_dir:
            raise ConfigError("--segmenter clipseg needs --clipseg-dir (a local CLIPSeg folder)")
        if segmenter == "sam" and not sam_dir:
            raise ConfigError("--segmenter sam needs --sam-dir (a local SAM folder)")
        self.model, self.cfg, self.state = load_trained(model_path, "cpu")
        self.image_size = int(self.cfg.data.image_size)
        self.fill, self.cam_threshold, self.min_similarity = fill, cam_threshold, min_similarity
        self.segmenter = segmenter
        self.uses_prior = self.cfg.model.prior_injection != "none"
        self.prompts = None
        if self.uses_prior:
            if not prompts_path:
                raise ConfigError(f"{model_path}: the model uses the 3DSPL prior; pass --prompts prompts.pt")
            from mesc3d.data.priors import read_prompts_file

            from mesc3d.engine.model_io import check_prompts

            self.prompts = read_prompts_file(prompts_path)
            self.prompts_path = prompts_path
            check_prompts(self.state, prompts_path, model_path)
            if int(self.prompts["prior_dim"]) != self.model.prior_in_dim:
                raise BadInputError(prompts_path, f"prior width {self.prompts['prior_dim']} != the model's "
                                    f"prior_in_dim {self.model.prior_in_dim}")
        self._stage1, self._encoded = None, {}
        self.grounder = self.clipseg = self.sam = None
        if need_text_grounding and segmenter != "clipseg":
            self.grounder = Grounder(head_path=grounding_head, threshold=cam_threshold,
                                     min_similarity=min_similarity, effnet_weights=effnet_weights)
        if segmenter == "clipseg":
            self.clipseg = load_clipseg(clipseg_dir)
        if segmenter == "sam":
            self.sam = load_sam(sam_dir)

    # ------------------------------------------------------------ prior
    def prior_for(self, text: str) -> tuple[torch.Tensor | None, str]:
        if not self.uses_prior:
            return None, "none"
        names = list(self.prompts["class_names"])
        if text in names:
            return self.prompts["priors"][names.index(text)][None].float(), "table"
        if text not in self._encoded:
            if self._stage1 is None:
                self._stage1 = build_prompt_encoder(self.prompts, self.prompts_path)
            self._encoded[text] = self._stage1.priors([text]).float()  # (1, D)
        return self._encoded[text], "encoded"

    # ------------------------------------------------------------ mask
    def ground(self, rgb: np.ndarray, text: str, box=None) -> tuple[np.ndarray, tuple, str, list[str]]:
        """-> (mask, box, box source, ImageNet names used)."""
        h, w = rgb.shape[:2]
        if self.segmenter == "clipseg" and box is None:
            mask = self.clipseg(rgb, text)
            mb = gr.mask_box(mask)
            if mb is None:
                log.warning("CLIPSeg found no %r in the photo: falling back to the centre box", text)
                box = gr.centre_box(w, h)
                return gr.grabcut_mask(rgb, box), box, "centre", []
            return mask, mb, "clipseg", []
        if box is None:
            return self.grounder.ground(rgb, text, self.sam if self.segmenter == "sam" else None)
        used: list[str] = []
        source = "given"
        mask = self.sam(rgb, box) if self.segmenter == "sam" else gr.grabcut_mask(rgb, box)
        if not mask.any():
            mask = gr.grabcut_mask(rgb, box)
        return mask, tuple(int(v) for v in box), source, used

    # ------------------------------------------------------------ one photo
    @torch.no_grad()
    def run(self, rgb: np.ndarray, text: str, box=None, mask=None) -> Result:
        t = {}
        t0 = time.perf_counter()
        if mask is not None:
            box, source, used = gr.mask_box(mask), "mask", []
        else:
            mask, box, source, used = self.ground(rgb, text, box)
        t["mask_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        crop = object_crop(rgb, mask, self.fill, self.image_size)  # (S, S, 3)
        prior, prior_kind = self.prior_for(text)
        image = torch.from_numpy(crop.copy()).permute(2, 0, 1)[None].float().div_(255.0)  # (1, 3, S, S)
        points = self.model(image, prior)[0].numpy()  # (N, 3)
        t["model_s"] = time.perf_counter() - t1
        t["total_s"] = time.perf_counter() - t0
        return Result(points, mask, tuple(int(v) for v in box), crop, text, prior_kind, source, used,
                      {k: round(v, 4) for k, v in t.items()})


def build_prompt_encoder(prompts: dict, path):
    """The stage-1 model of ``prompts.pt`` (frozen tower rebuilt from its config) for new class names."""
    from mesc3d.config import from_dict
    from mesc3d.models.prompt_stage1 import Stage1Model

    cfg = from_dict(prompts["config"], source=str(path))
    state = prompts["prompt_state"]
    feat_dim = int(state["point_proj.weight"].shape[1])
    model = Stage1Model(cfg.prompt, list(prompts["class_names"]), feat_dim)
    try:
        model.load_trainable_state(state)
    except KeyError as err:
        raise BadInputError(path, f"prompt state does not match its config ({err})") from None
    return model.eval()


def _load_hf(cls, folder, what: str):
    folder = Path(folder)
    if not folder.is_dir():
        raise BadInputError(folder, f"{what} folder does not exist (give a local from_pretrained folder)")
    try:
        return cls.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as err:
        raise BadInputError(folder, f"not a {what} folder ({str(err).splitlines()[0][:160]})") from None


def load_clipseg(folder) -> gr.ClipSegMasker:
    from transformers import AutoTokenizer, CLIPSegForImageSegmentation

    model = _load_hf(CLIPSegForImageSegmentation, folder, "CLIPSeg")
    tok = _load_hf(AutoTokenizer, folder, "CLIPSeg tokenizer")
    return gr.ClipSegMasker(model, lambda text: tok(text)["input_ids"])


def load_sam(folder) -> gr.SamBoxMasker:
    from transformers import SamModel

    return gr.SamBoxMasker(_load_hf(SamModel, folder, "SAM"))


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0
