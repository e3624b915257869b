"""Image encoders: image (B, 3, H, H) in [0, 1] RGB -> image tokens (B, n_tokens, token_dim).

Registry: ``mesc3d.registries.IMAGE_ENCODERS`` (name -> builder ``"module:function"``, weights key,
preprocessing, frozen or not); ``config.ENUMS['model.image_encoder']`` is its names.  Adding an encoder
is one registry entry and its builder ``function(model_cfg, data_cfg, clip_weights="") -> nn.Module``
(docs/extending.md).

- ``resnet18`` (official, docs/design.md): torchvision ResNet-18 with its 1000-way fc head, ``weights=None``
  (trained from scratch, no ImageNet normalisation, as the official code), then ``linear`` 1000 ->
  n_tokens*token_dim, reshaped into tokens (chunks of one global vector, not patches).
  ``model.image_weights`` may name a LOCAL torchvision ResNet-18 state dict (ImageNet) to start from;
  nothing is ever downloaded.
- ``clip_frozen`` / ``clip_finetune`` (Tab. 4): the open_clip ``model.clip_arch`` (ViT-B-16) visual tower
  of the CLIP weights ``model.image_weights`` or, when empty, the run's ``prompt.pretrained`` (the same
  CLIP as the text tower; loaded by ``clip_weights.load_clip``: OpenAI weights get QuickGELU).
  ``data.image_size`` must equal the weights' image size (224 for ViT-B/16).  No weights -> refused
  (a frozen random ViT would be trained on and reported); tests set ``MESC3D_TEST_ALLOW_RANDOM_CLIP=1``.
  Inputs are normalised with the CLIP mean/std.
  ``clip_frozen``: the tower has no gradients and always stays in eval mode; only ``linear`` trains.
- ``agglomerated`` (docs/teachers.md): ``model.teachers`` (frozen 2D foundation models, optionally the
  trainable ``resnet18``), each projected to the token space and fused by ``model.teacher_fusion``
  (``mesc3d.models.agglomerated``).  ``effnet_lite0`` / ``dinov2_s14`` / ``dinov2_b14``: that one frozen
  teacher alone (+ its projection).

The backbones (ResNet-18, the CLIP visual tower) and the preprocessing live in ``mesc3d.models.backbones``.
"""

from __future__ import annotations

import importlib
from typing import Callable

import torch
from torch import nn

from mesc3d.config import DataCfg, ModelCfg
from mesc3d.errors import ConfigError
from mesc3d.models.backbones import build_clip_visual, resize_normalize, resnet18_backbone
from mesc3d.registries import IMAGE_ENCODERS, ImageModelSpec


def builder(spec: ImageModelSpec) -> Callable[..., nn.Module]:
    """The function a registry entry's ``"module:function"`` names."""
    module, _, name = spec.builder.partition(":")
    return getattr(importlib.import_module(module), name)


def build_image_encoder(model_cfg: ModelCfg, data_cfg: DataCfg, clip_weights: str = "") -> nn.Module:
    """The configured encoder; ``forward(images (B, 3, H, H)) -> (B, n_tokens, token_dim)``.

    ``clip_weights``: the run's CLIP weights (``prompt.pretrained``), used by the clip_* encoders when
    ``model.image_weights`` is empty, so Tab. 4 starts from the same CLIP as the text tower."""
    try:
        spec = IMAGE_ENCODERS[model_cfg.image_encoder]
    except KeyError:
        raise ConfigError(f"model.image_encoder {model_cfg.image_encoder!r} is not one of "
                          f"{sorted(IMAGE_ENCODERS)}") from None
    extra = {"teachers": spec.teachers} if spec.teachers else {}
    return builder(spec)(model_cfg, data_cfg, clip_weights, **extra)


class TokenHead(nn.Module):
    """Base: backbone(images) -> (B, feat_dim) -> ``linear`` -> (B, n_tokens, token_dim)."""

    def __init__(self, backbone: nn.Module, feat_dim: int, n_tokens: int, token_dim: int):
        super().__init__()
        self.backbone = backbone
        self.linear = nn.Linear(feat_dim, n_tokens * token_dim)
        self.n_tokens, self.token_dim = n_tokens, token_dim

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.backbone(images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"image encoder expects images of shape (B, 3, H, W), got {tuple(images.shape)}")
        feat = self.features(images)  # (B, feat_dim)
        return self.linear(feat).reshape(images.shape[0], self.n_tokens, self.token_dim)


def resnet18_encoder(model_cfg: ModelCfg, data_cfg: DataCfg, clip_weights: str = "") -> nn.Module:
    return TokenHead(resnet18_backbone(model_cfg), 1000, model_cfg.n_tokens, model_cfg.token_dim)


class CLIPVisualTokens(TokenHead):
    """open_clip visual tower (CLIP mean/std inside) -> embed_dim -> tokens; optionally frozen."""

    def __init__(self, visual: nn.Module, embed_dim: int, n_tokens: int, token_dim: int, frozen: bool,
                 mean, std):
        super().__init__(visual, embed_dim, n_tokens, token_dim)
        self.mean, self.std = tuple(mean), tuple(std)
        self.frozen = frozen
        if frozen:
            self.backbone.requires_grad_(False)
            self.backbone.eval()

    def train(self, mode: bool = True):
        super().train(mode)
        if self.frozen:
            self.backbone.eval()  # a frozen tower never switches to train mode
        return self

    def features(self, images: torch.Tensor) -> torch.Tensor:
        x = resize_normalize(images, None, self.mean, self.std)
        if self.frozen:
            with torch.no_grad():
                return self.backbone(x)
        return self.backbone(x)


def _clip(model_cfg: ModelCfg, data_cfg: DataCfg, clip_weights: str, spec: ImageModelSpec) -> nn.Module:
    weights = model_cfg.image_weights or clip_weights
    key = "model.image_weights" if model_cfg.image_weights else "prompt.pretrained (Tab. 4 image tower)"
    visual, embed_dim, _ = build_clip_visual(model_cfg, data_cfg.image_size, weights, key)
    return CLIPVisualTokens(visual, embed_dim, model_cfg.n_tokens, model_cfg.token_dim, not spec.trainable,
                            spec.preprocess.mean, spec.preprocess.std)


def clip_frozen_encoder(model_cfg: ModelCfg, data_cfg: DataCfg, clip_weights: str = "") -> nn.Module:
    return _clip(model_cfg, data_cfg, clip_weights, IMAGE_ENCODERS["clip_frozen"])


def clip_finetune_encoder(model_cfg: ModelCfg, data_cfg: DataCfg, clip_weights: str = "") -> nn.Module:
    return _clip(model_cfg, data_cfg, clip_weights, IMAGE_ENCODERS["clip_finetune"])
