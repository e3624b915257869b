"""Image encoders: image (B, 3, H, H) in [0, 1] RGB -> image tokens (B, n_tokens, token_dim).

Registry: ``IMAGE_ENCODERS[name](model_cfg, data_cfg) -> nn.Module``; add a new encoder with
``@register_image_encoder("name")`` (and the name to ``ENUMS['model.image_encoder']`` in config.py).

- ``resnet18`` (official, spec §1): torchvision ResNet-18 with its 1000-way fc head, ``weights=None``
  (trained from scratch, no ImageNet normalisation, as the official code), then ``linear`` 1000 ->
  n_tokens*token_dim, reshaped into tokens (chunks of one global vector, not patches).
  ``model.image_weights`` may name a LOCAL torchvision ResNet-18 state dict (ImageNet) to start from;
  nothing is ever downloaded.
- ``clip_frozen`` / ``clip_finetune`` (Tab. 4): the open_clip ``model.clip_arch`` (ViT-B-16) visual tower,
  built with random weights (pretrained=None: offline) unless ``model.image_weights`` names a local
  open_clip checkpoint (full CLIP or visual-only state dict).  Inputs are normalised with the CLIP
  mean/std; the tower's ``image_size`` follows ``data.image_size`` (must be a multiple of the patch).
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


def build_image_encoder(model_cfg: ModelCfg, data_cfg: DataCfg) -> nn.Module:
    """The configured encoder; ``forward(images (B, 3, H, H)) -> (B, n_tokens, token_dim)``."""
    try:
        factory = IMAGE_ENCODERS[model_cfg.image_encoder]
    except KeyError:
        raise ConfigError(f"model.image_encoder {model_cfg.image_encoder!r} is not one of "
                          f"{sorted(IMAGE_ENCODERS)}") from None
    return factory(model_cfg, data_cfg)


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
def _resnet18(model_cfg: ModelCfg, data_cfg: DataCfg) -> nn.Module:
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


def build_clip_visual(model_cfg: ModelCfg, image_size: int | None, weights: str,
                      key: str = "model.image_weights") -> tuple[nn.Module, int, int]:
    """open_clip ``model.clip_arch`` visual tower -> (tower, embed_dim, image_size).

    ``image_size`` None = the architecture's own (224 for ViT-B-16); ``weights`` = optional local
    open_clip checkpoint (full CLIP or visual-only); random init otherwise (offline).
    """
    import open_clip
    from open_clip.model import CLIPVisionCfg, _build_vision_tower

    arch = open_clip.get_model_config(model_cfg.clip_arch)
    if arch is None:
        raise ConfigError(f"model.clip_arch {model_cfg.clip_arch!r} is not an open_clip architecture")
    vision = dict(arch["vision_cfg"])
    patch = vision.get("patch_size", 16)
    size = int(image_size or vision.get("image_size", 224))
    if size % patch:
        raise ConfigError(f"data.image_size {size} must be a multiple of the CLIP patch {patch}")
    vision["image_size"] = size  # 224 in the paper preset (= the pretrained size)
    visual = _build_vision_tower(arch["embed_dim"], CLIPVisionCfg(**vision),
                                 quick_gelu=arch.get("quick_gelu", False))  # random init (offline)
    if weights:
        state = _load_local(weights)
        if any(k.startswith("visual.") for k in state):
            state = {k[len("visual."):]: v for k, v in state.items() if k.startswith("visual.")}
        try:
            visual.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise BadInputError(weights, f"{key}: not an open_clip {model_cfg.clip_arch} visual "
                                f"state dict at this image size ({str(err).splitlines()[0][:160]})") from None
    return visual, arch["embed_dim"], size


def _clip(model_cfg: ModelCfg, data_cfg: DataCfg, frozen: bool) -> nn.Module:
    visual, embed_dim, _ = build_clip_visual(model_cfg, data_cfg.image_size, model_cfg.image_weights)
    return CLIPVisualTokens(visual, embed_dim, model_cfg.n_tokens, model_cfg.token_dim, frozen)


@register_image_encoder("clip_frozen")
def _clip_frozen(model_cfg: ModelCfg, data_cfg: DataCfg) -> nn.Module:
    return _clip(model_cfg, data_cfg, frozen=True)


@register_image_encoder("clip_finetune")
def _clip_finetune(model_cfg: ModelCfg, data_cfg: DataCfg) -> nn.Module:
    return _clip(model_cfg, data_cfg, frozen=False)


def _agglomerated_factory(teachers: tuple[str, ...] | None):
    def build(model_cfg: ModelCfg, data_cfg: DataCfg) -> nn.Module:
        from mesc3d.models.agglomerated import build_agglomerated

        return build_agglomerated(model_cfg, teachers)

    return build


# agglomerated: model.teachers fused by model.teacher_fusion; one frozen teacher alone = its name
register_image_encoder("agglomerated")(_agglomerated_factory(None))
for _name in ("effnet_lite0", "dinov2_s14", "dinov2_b14"):
    register_image_encoder(_name)(_agglomerated_factory((_name,)))
