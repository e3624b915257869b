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

The names are ``ENUMS['model.teachers']`` (config.py); ``TEACHERS`` here must cover exactly them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from mesc3d.config import ModelCfg
from mesc3d.errors import BadInputError, ConfigError

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def resize_normalize(images: torch.Tensor, size: int, mean, std) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] -> (B, 3, size, size), (x - mean) / std."""
    if images.shape[-2:] != (size, size):
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    m = images.new_tensor(mean).view(1, 3, 1, 1)
    s = images.new_tensor(std).view(1, 3, 1, 1)
    return (images - m) / s


class Teacher(nn.Module):
    """``net`` + ``preprocess`` -> (B, out_dim); ``frozen`` teachers: eval mode, no grad."""

    def __init__(self, name: str, net: nn.Module, out_dim: int, frozen: bool):
        super().__init__()
        self.name, self.net, self.out_dim, self.frozen = name, net, int(out_dim), frozen
        if frozen:
            self.net.requires_grad_(False)
            self.net.eval()

    def train(self, mode: bool = True):
        super().train(mode)
        if self.frozen:
            self.net.eval()  # BN statistics / dropout of a frozen teacher never change
        return self

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        return images

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.preprocess(images)
        if not self.frozen:
            return self.embed(x)  # (B, out_dim)
        with torch.no_grad():
            return self.embed(x).detach()  # (B, out_dim)


class EffNetTeacher(Teacher):
    def preprocess(self, images):
        from mesc3d.models.effnet_lite0 import effnet_preprocess

        return effnet_preprocess(images)  # (B, 3, 224, 224) in [-1, 1]

    def embed(self, x):
        return self.net.forward_features(x).mean(dim=(2, 3))  # (B, 1280, 7, 7) -> (B, 1280)


class DinoTeacher(Teacher):
    size = 224  # 16 x 16 patches of 14 px; position embeddings are interpolated by the model

    def preprocess(self, images):
        return resize_normalize(images, self.size, IMAGENET_MEAN, IMAGENET_STD)

    def embed(self, x):
        return self.net(pixel_values=x).pooler_output  # (B, hidden): layer-normed CLS token


class ClipTeacher(Teacher):
    def __init__(self, name, net, out_dim, size: int):
        super().__init__(name, net, out_dim, frozen=True)
        self.size = int(size)

    def preprocess(self, images):
        from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

        return resize_normalize(images, self.size, OPENAI_DATASET_MEAN, OPENAI_DATASET_STD)


# ------------------------------------------------------------------ builders
def _required(model_cfg: ModelCfg, key: str, teacher: str) -> str:
    path = getattr(model_cfg, key)
    if not path:
        raise ConfigError(f"model.{key} is empty but model teacher {teacher!r} needs its pretrained weights "
                          f"(a local file/folder; a random frozen teacher would be meaningless)")
    if not Path(path).exists():
        raise BadInputError(path, f"model.{key} (weights of teacher {teacher!r}) does not exist")
    return path


def _resnet18(model_cfg: ModelCfg) -> Teacher:
    from mesc3d.models.image_encoder import resnet18_backbone

    return Teacher("resnet18", resnet18_backbone(model_cfg), 1000, frozen=False)


def _effnet(model_cfg: ModelCfg) -> Teacher:
    from mesc3d.models.effnet_lite0 import EFFNET_FEATURE_DIM, load_effnet_lite0

    return EffNetTeacher("effnet_lite0", load_effnet_lite0(model_cfg.effnet_weights or None),
                         EFFNET_FEATURE_DIM, frozen=True)


def _dinov2(key: str, name: str) -> Callable[[ModelCfg], Teacher]:
    def build(model_cfg: ModelCfg) -> Teacher:
        from transformers import Dinov2Model

        folder = _required(model_cfg, key, name)
        try:
            net = Dinov2Model.from_pretrained(folder, local_files_only=True)
        except (OSError, ValueError) as err:
            raise BadInputError(folder, f"not a transformers DINOv2 folder ({str(err).splitlines()[0][:160]})") from None
        return DinoTeacher(name, net, net.config.hidden_size, frozen=True)

    return build


def _clip(model_cfg: ModelCfg) -> Teacher:
    from mesc3d.models.image_encoder import build_clip_visual

    path = _required(model_cfg, "clip_weights", "clip")
    visual, embed_dim, size = build_clip_visual(model_cfg, None, path, "model.clip_weights")
    return ClipTeacher("clip", visual, embed_dim, size)


TEACHERS: dict[str, Callable[[ModelCfg], Teacher]] = {
    "resnet18": _resnet18,
    "effnet_lite0": _effnet,
    "dinov2_s14": _dinov2("dinov2_s14_weights", "dinov2_s14"),
    "dinov2_b14": _dinov2("dinov2_b14_weights", "dinov2_b14"),
    "clip": _clip,
}


def build_teacher(name: str, model_cfg: ModelCfg) -> Teacher:
    if name not in TEACHERS:
        raise ConfigError(f"model.teachers: {name!r} is not one of {sorted(TEACHERS)}")
    return TEACHERS[name](model_cfg)
