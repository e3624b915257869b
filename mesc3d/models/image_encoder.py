"""Image encoders: image (B, 3, H, H) in [0, 1] RGB -> image tokens (B, n_tokens, token_dim).

Registry: ``IMAGE_ENCODERS[name](model_cfg, data_cfg) -> nn.Module``; add a new encoder with
``@register_image_encoder("name")`` (and the name to ``ENUMS['model.image_encoder']`` in config.py).

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
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from mesc3d.config import DataCfg, ModelCfg
from mesc3d.errors import BadInputError, ConfigError

IMAGE_ENCODERS: dict[str, Callable[[ModelCfg, DataCfg], nn.Module]] = {}


def register_image_encoder(name: str):
    def deco(factory: Callable[[ModelCfg, DataCfg], nn.Module]):
        IMAGE_ENCODERS[name] = factory
        return factory

    return deco


def build_image_encoder(model_cfg: ModelCfg, data_cfg: DataCfg, clip_weights: str = "") -> nn.Module:
    """The configured encoder; ``forward(images (B, 3, H, H)) -> (B, n_tokens, token_dim)``.

    ``clip_weights``: the run's CLIP weights (``prompt.pretrained``), used by the clip_* encoders when
    ``model.image_weights`` is empty, so Tab. 4 starts from the same CLIP as the text tower."""
    try:
        factory = IMAGE_ENCODERS[model_cfg.image_encoder]
    except KeyError:
        raise ConfigError(f"model.image_encoder {model_cfg.image_encoder!r} is not one of "
                          f"{sorted(IMAGE_ENCODERS)}") from None
    return factory(model_cfg, data_cfg, clip_weights)


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


def _load_local(path: str) -> dict:
    from mesc3d.models.point_mae import read_weights  # weights_only loading with one-line errors

    obj = read_weights(path)
    for key in ("state_dict", "model", "net_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise BadInputError(path, f"expected a state dict, got {type(obj).__name__}")
    return {k.removeprefix("module."): v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def resnet18_backbone(model_cfg: ModelCfg) -> nn.Module:
    """torchvision ResNet-18 (B, 3, H, W) -> (B, 1000); ``model.image_weights`` = optional local start."""
    from torchvision.models import resnet18

    backbone = resnet18(weights=None, num_classes=1000)  # (B, 3, H, W) -> (B, 1000)
    if model_cfg.image_weights:
        state = _load_local(model_cfg.image_weights)
        try:
            backbone.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise BadInputError(model_cfg.image_weights, f"not a torchvision ResNet-18 state dict "
                                f"({str(err).splitlines()[0][:160]})") from None
    return backbone


@register_image_encoder("resnet18")
def _resnet18(model_cfg: ModelCfg, data_cfg: DataCfg, clip_weights: str = "") -> nn.Module:
    return TokenHead(resnet18_backbone(model_cfg), 1000, model_cfg.n_tokens, model_cfg.token_dim)


class CLIPVisualTokens(TokenHead):
    """open_clip visual tower (CLIP mean/std inside) -> embed_dim -> tokens; optionally frozen."""

    def __init__(self, visual: nn.Module, embed_dim: int, n_tokens: int, token_dim: int, frozen: bool):
        super().__init__(visual, embed_dim, n_tokens, token_dim)
        from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

        self.register_buffer("mean", torch.tensor(OPENAI_DATASET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(OPENAI_DATASET_STD).view(1, 3, 1, 1), persistent=False)
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
        x = (images - self.mean.to(images.dtype)) / self.std.to(images.dtype)
        if self.frozen:
            with torch.no_grad():
                return self.backbone(x)
        return self.backbone(x)


ALLOW_RANDOM_CLIP_ENV = "MESC3D_TEST_ALLOW_RANDOM_CLIP"  # test-only switch: "1" lets a CLIP tower start random


def build_clip_visual(model_cfg: ModelCfg, image_size: int | None, weights: str,
                      key: str = "model.image_weights") -> tuple[nn.Module, int, int]:
    """open_clip ``model.clip_arch`` visual tower -> (tower, embed_dim, image_size).

    ``weights``: a visual-only state dict (keys ``visual.*``, e.g. a teacher saved by us), or any CLIP
    weights ``clip_weights.load_clip`` reads (OpenAI JIT archive / state dict -> QuickGELU, open_clip
    state dict, or a tag); ``image_size`` None = the architecture's own, else it must match the weights'.
    No weights -> refused unless a test sets ``MESC3D_TEST_ALLOW_RANDOM_CLIP=1`` (random init).
    """
    import os
    from pathlib import Path

    from open_clip.model import CLIPVisionCfg, _build_vision_tower

    from mesc3d.models.clip_weights import _read, is_local, load_clip, model_config, visual_image_size

    arch = model_config(model_cfg.clip_arch, key="model.clip_arch")
    vision = dict(arch["vision_cfg"])
    patch = vision.get("patch_size", 16)
    size = int(image_size or vision.get("image_size", 224))
    if size % patch:
        raise ConfigError(f"data.image_size {size} must be a multiple of the CLIP patch {patch}")

    def random_tower() -> nn.Module:
        cfg = dict(vision, image_size=size)
        return _build_vision_tower(arch["embed_dim"], CLIPVisionCfg(**cfg), quick_gelu=arch.get("quick_gelu", False))

    state, jit = _read(Path(weights)) if weights and is_local(weights) and Path(weights).is_file() else (None, False)
    if state and not jit and all(k.startswith("visual.") for k in state):  # visual-only file
        visual = random_tower()
        try:
            visual.load_state_dict({k[len("visual."):]: v for k, v in state.items()}, strict=True)
        except RuntimeError as err:
            raise BadInputError(weights, f"{key}: not an open_clip {model_cfg.clip_arch} visual "
                                f"state dict at this image size ({str(err).splitlines()[0][:160]})") from None
    elif weights:  # the visual tower of the CLIP weights (OpenAI: QuickGELU), as the text tower loads them
        visual = load_clip(model_cfg.clip_arch, weights, key=key).visual
        if visual_image_size(visual) != size:
            raise ConfigError(f"{key}: image size {size} != the CLIP weights' image size "
                              f"{visual_image_size(visual)} ({weights})")
    elif os.environ.get(ALLOW_RANDOM_CLIP_ENV) == "1":
        visual = random_tower()  # random init: tests only
    else:
        raise ConfigError(f"{key}: no CLIP weights; a random CLIP image tower is refused "
                          f"(tests set {ALLOW_RANDOM_CLIP_ENV}=1)")
    return visual, arch["embed_dim"], size


def _clip(model_cfg: ModelCfg, data_cfg: DataCfg, frozen: bool, clip_weights: str = "") -> nn.Module:
    weights = model_cfg.image_weights or clip_weights
    key = "model.image_weights" if model_cfg.image_weights else "prompt.pretrained (Tab. 4 image tower)"
    visual, embed_dim, _ = build_clip_visual(model_cfg, data_cfg.image_size, weights, key)
    return CLIPVisualTokens(visual, embed_dim, model_cfg.n_tokens, model_cfg.token_dim, frozen)


@register_image_encoder("clip_frozen")
def _clip_frozen(model_cfg: ModelCfg, data_cfg: DataCfg, clip_weights: str = "") -> nn.Module:
    return _clip(model_cfg, data_cfg, frozen=True, clip_weights=clip_weights)


@register_image_encoder("clip_finetune")
def _clip_finetune(model_cfg: ModelCfg, data_cfg: DataCfg, clip_weights: str = "") -> nn.Module:
    return _clip(model_cfg, data_cfg, frozen=False, clip_weights=clip_weights)


def _agglomerated_factory(teachers: tuple[str, ...] | None):
    def build(model_cfg: ModelCfg, data_cfg: DataCfg, clip_weights: str = "") -> nn.Module:
        from mesc3d.models.agglomerated import build_agglomerated

        return build_agglomerated(model_cfg, teachers)

    return build


# agglomerated: model.teachers fused by model.teacher_fusion; one frozen teacher alone = its name
register_image_encoder("agglomerated")(_agglomerated_factory(None))
for _name in ("effnet_lite0", "dinov2_s14", "dinov2_b14"):
    register_image_encoder(_name)(_agglomerated_factory((_name,)))
