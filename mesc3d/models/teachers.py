"""2D teachers for the agglomerated image encoder: image (B, 3, H, W) in [0, 1] -> global feature (B, C).

Each teacher owns its preprocessing (input size, normalisation) and says whether it is frozen.  A
frozen teacher runs under ``no_grad``, never leaves eval mode and never receives gradients; its
weights must come from a local file/folder named in the config (nothing is ever downloaded):

=============  =====  =========================================================  ==========================
name           C      network / weights key                                      preprocessing
=============  =====  =========================================================  ==========================
resnet18       1000   torchvision ResNet-18, TRAINABLE (from scratch or           none (as the paper)
                      ``model.image_weights``)
effnet_lite0   1280   EfficientNet-Lite0, ImageNet (``model.effnet_weights``,     224, [-1, 1]
                      default = the packaged file), global-average-pooled
dinov2_s14     384    transformers ``Dinov2Model`` from ``model.dinov2_s14_weights``  224, ImageNet mean/std
dinov2_b14     768    ... from ``model.dinov2_b14_weights``; feature = pooled CLS
clip           512    open_clip ``model.clip_arch`` visual tower from               arch size, CLIP mean/std
                      ``model.clip_weights`` (full CLIP or visual-only state dict)
=============  =====  =========================================================  ==========================

The table is ``mesc3d.registries.TEACHERS`` (builder, weights key and kind, preprocessing, frozen);
``config.ENUMS['model.teachers']`` is its names.  A weights key is checked against what the registry
says it must name before anything is built: a transformers folder's ``config.json`` must have the
registered ``model_type`` and its weights must load into that configuration (one line otherwise).
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import torch
from torch import nn

from mesc3d.config import ModelCfg
from mesc3d.errors import BadInputError, ConfigError
from mesc3d.models.backbones import build_clip_visual, resize_normalize, resnet18_backbone
from mesc3d.registries import TEACHERS, Preprocess


class Teacher(nn.Module):
    """``net`` + ``preprocess`` -> (B, out_dim); ``frozen`` teachers: eval mode, no grad."""

    def __init__(self, name: str, net: nn.Module, out_dim: int, frozen: bool, prep: Preprocess = Preprocess()):
        super().__init__()
        self.name, self.net, self.out_dim, self.frozen = name, net, int(out_dim), frozen
        self.prep = prep
        if frozen:
            self.net.requires_grad_(False)
            self.net.eval()

    def train(self, mode: bool = True):
        super().train(mode)
        if self.frozen:
            self.net.eval()  # BN statistics / dropout of a frozen teacher never change
        return self

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        if self.prep == Preprocess():
            return images  # identity (the trainable ResNet-18, as the paper)
        return resize_normalize(images, self.prep.size, self.prep.mean, self.prep.std)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.preprocess(images)
        if not self.frozen:
            return self.embed(x)  # (B, out_dim)
        with torch.no_grad():
            return self.embed(x).detach()  # (B, out_dim)


class EffNetTeacher(Teacher):
    def embed(self, x):
        return self.net.forward_features(x).mean(dim=(2, 3))  # (B, 1280, 7, 7) -> (B, 1280)


class DinoTeacher(Teacher):
    def embed(self, x):
        return self.net(pixel_values=x).pooler_output  # (B, hidden): layer-normed CLS token


# ------------------------------------------------------------------ builders
def _required(model_cfg: ModelCfg, name: str) -> str:
    """The weights path of teacher ``name`` (registry key), which must be set and exist."""
    key = TEACHERS[name].weights.key
    path = getattr(model_cfg, key.split(".")[-1])
    if not path:
        raise ConfigError(f"{key} is empty but model teacher {name!r} needs its pretrained weights "
                          f"(a local file/folder; a random frozen teacher would be meaningless)")
    if not Path(path).exists():
        raise BadInputError(path, f"{key} (weights of teacher {name!r}) does not exist")
    return path


def _frozen(name: str) -> bool:
    return not TEACHERS[name].trainable


def resnet18_teacher(model_cfg: ModelCfg, name: str = "resnet18") -> Teacher:
    return Teacher(name, resnet18_backbone(model_cfg), 1000, _frozen(name), TEACHERS[name].preprocess)


def effnet_teacher(model_cfg: ModelCfg, name: str = "effnet_lite0") -> Teacher:
    from mesc3d.models.effnet_lite0 import EFFNET_FEATURE_DIM, load_effnet_lite0

    return EffNetTeacher(name, load_effnet_lite0(model_cfg.effnet_weights or None), EFFNET_FEATURE_DIM,
                         _frozen(name), TEACHERS[name].preprocess)


def check_transformers_folder(folder: str, key: str, model_type: str, what: str) -> None:
    """``folder`` is a transformers ``save_pretrained`` folder of ``model_type`` (one line otherwise)."""
    config = Path(folder) / "config.json"
    if not config.is_file():
        raise BadInputError(folder, f"{key}: not a transformers {what} folder (no config.json)")
    try:
        found = json.loads(config.read_text()).get("model_type")
    except (ValueError, AttributeError, OSError, UnicodeDecodeError) as err:
        raise BadInputError(config, f"{key}: not a transformers {what} folder (config.json: "
                            f"{str(err)[:160]})") from None
    if found != model_type:
        raise BadInputError(folder, f"{key}: not a transformers {what} folder: config.json says model_type "
                            f"{str(found)[:80]!r}, expected {model_type!r}")


def dinov2_teacher(model_cfg: ModelCfg, name: str) -> Teacher:
    from transformers import Dinov2Model

    weights = TEACHERS[name].weights
    folder = _required(model_cfg, name)
    check_transformers_folder(folder, weights.key, weights.model_type, "DINOv2")
    try:
        net, info = Dinov2Model.from_pretrained(folder, local_files_only=True, output_loading_info=True)
    except Exception as err:  # noqa: BLE001 - OSError, ValueError, SafetensorError, RuntimeError (shapes)
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
        why = f"{type(err).__name__}: {lines[0][:200]}" if lines else type(err).__name__
        raise BadInputError(folder, f"{weights.key}: not a loadable transformers DINOv2 folder ({why})") from None
    # weights the folder lacks would stay random in a frozen teacher (mask_token: unused without masking)
    missing = [k for k in info.get("missing_keys", []) if not k.endswith("mask_token")]
    bad = missing + [str(k[0] if isinstance(k, tuple) else k) for k in info.get("mismatched_keys", [])]
    if bad:
        raise BadInputError(folder, f"{weights.key}: the DINOv2 weights do not fit its config.json "
                            f"({len(bad)} tensors missing or of another shape, e.g. {bad[:3]})")
    return DinoTeacher(name, net, net.config.hidden_size, _frozen(name), TEACHERS[name].preprocess)


def clip_teacher(model_cfg: ModelCfg, name: str = "clip") -> Teacher:
    spec = TEACHERS[name]
    path = _required(model_cfg, name)
    visual, embed_dim, size = build_clip_visual(model_cfg, None, path, spec.weights.key)
    prep = Preprocess(spec.preprocess.mean, spec.preprocess.std, size)  # the architecture's own size
    return Teacher(name, visual, embed_dim, _frozen(name), prep)


def build_teacher(name: str, model_cfg: ModelCfg) -> Teacher:
    if name not in TEACHERS:
        raise ConfigError(f"model.teachers: {name!r} is not one of {sorted(TEACHERS)}")
    module, _, function = TEACHERS[name].builder.partition(":")
    return getattr(importlib.import_module(module), function)(model_cfg, name)
