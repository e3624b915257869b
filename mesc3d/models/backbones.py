"""Image backbones shared by the image encoders and the teachers, and their preprocessing.

- ``resize_normalize(images (B, 3, H, W) in [0, 1], size, mean, std) -> (B, 3, size, size)``: the one
  resize-then-normalise (bilinear, antialiased; ``size`` None = no resize); the constants are the
  registry's (``mesc3d.registries``: CLIP, ImageNet, [-1, 1]).
- ``resnet18_backbone(model_cfg)``: torchvision ResNet-18, (B, 3, H, W) -> (B, 1000), random init
  (as the paper) or the LOCAL torchvision state dict ``model.image_weights`` (nothing is downloaded);
  ``model.resnet_width`` scales its channels (64 = torchvision's; the small preset uses 32).
- ``build_clip_visual(model_cfg, image_size, weights, key) -> (tower, embed_dim, image_size)``: the
  open_clip ``model.clip_arch`` visual tower from a visual-only state dict or any CLIP weights
  ``clip_weights.load_clip`` reads; no weights -> refused (tests allow a random tower with
  ``MESC3D_TEST_ALLOW_RANDOM_CLIP=1``).
- ``load_local_state(path, what)``: a local weights file -> state dict (``mesc3d.safe_load``).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from mesc3d.config import ModelCfg
from mesc3d.errors import BadInputError, ConfigError
from mesc3d.safe_load import load_torch, state_dict_of

ALLOW_RANDOM_CLIP_ENV = "MESC3D_TEST_ALLOW_RANDOM_CLIP"  # test-only switch: "1" lets a CLIP tower start random


def resize_normalize(images: torch.Tensor, size: int | None, mean, std) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] -> (B, 3, size, size) (no resize when ``size`` is None), (x - mean) / std."""
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"preprocessing expects images of shape (B, 3, H, W), got {tuple(images.shape)}")
    if size is not None and images.shape[-2:] != (size, size):
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    m = images.new_tensor(mean).view(1, 3, 1, 1)
    s = images.new_tensor(std).view(1, 3, 1, 1)
    return (images - m) / s


def load_local_state(path: str, what: str = "a state dict") -> dict[str, torch.Tensor]:
    """A local weights file (``torch.save``d state dict, possibly wrapped) -> its tensors."""
    return state_dict_of(load_torch(path, "weights file"), path, what)


def _resnet18(width: int) -> nn.Module:
    """torchvision ResNet-18 with base width ``width`` (64: torchvision's own, module for module): the
    stem and layer1..4 get width, 2, 4, 8 x width channels, the fc head 8 x width -> 1000; torchvision's
    init (Kaiming-normal convs, unit BatchNorm)."""
    from torchvision.models import resnet18
    from torchvision.models.resnet import BasicBlock

    net = resnet18(weights=None, num_classes=1000)  # (B, 3, H, W) -> (B, 1000)
    if width == 64:
        return net
    net.inplanes = width
    net.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
    net.bn1 = nn.BatchNorm2d(width)
    for i in range(4):
        setattr(net, f"layer{i + 1}", net._make_layer(BasicBlock, width << i, 2, stride=1 if i == 0 else 2))
    net.fc = nn.Linear(8 * width, 1000)
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)
    return net


def resnet18_backbone(model_cfg: ModelCfg) -> nn.Module:
    """ResNet-18 (B, 3, H, W) -> (B, 1000) of base width ``model.resnet_width`` (64 = torchvision's);
    ``model.image_weights`` = optional local torchvision state dict to start from (width 64 only)."""
    width = model_cfg.resnet_width
    if model_cfg.image_weights and width != 64:
        raise ConfigError(f"model.image_weights {model_cfg.image_weights!r} is a torchvision ResNet-18 (width 64); "
                          f"model.resnet_width is {width}")
    backbone = _resnet18(width)
    if model_cfg.image_weights:
        state = load_local_state(model_cfg.image_weights)
        try:
            backbone.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise BadInputError(model_cfg.image_weights, f"not a torchvision ResNet-18 state dict "
                                f"({str(err).splitlines()[0][:160]})") from None
    return backbone


def build_clip_visual(model_cfg: ModelCfg, image_size: int | None, weights: str,
                      key: str = "model.image_weights") -> tuple[nn.Module, int, int]:
    """open_clip ``model.clip_arch`` visual tower -> (tower, embed_dim, image_size).

    ``weights``: a visual-only state dict (keys ``visual.*``, e.g. a teacher saved by us), or any CLIP
    weights ``clip_weights.load_clip`` reads (OpenAI JIT archive / state dict -> QuickGELU, open_clip
    state dict, or a tag); ``image_size`` None = the architecture's own, else it must match the weights'.
    No weights -> refused unless a test sets ``MESC3D_TEST_ALLOW_RANDOM_CLIP=1`` (random init).
    """
    from open_clip.model import CLIPVisionCfg, _build_vision_tower

    from mesc3d.models.clip_weights import is_local, load_clip, model_config, read_clip_file, visual_image_size

    arch = model_config(model_cfg.clip_arch, key="model.clip_arch")
    vision = dict(arch["vision_cfg"])
    patch = vision.get("patch_size", 16)
    size = int(image_size or vision.get("image_size", 224))
    if size % patch:
        raise ConfigError(f"data.image_size {size} must be a multiple of the CLIP patch {patch}")

    def random_tower() -> nn.Module:
        cfg = dict(vision, image_size=size)
        return _build_vision_tower(arch["embed_dim"], CLIPVisionCfg(**cfg), quick_gelu=arch.get("quick_gelu", False))

    local = weights and is_local(weights) and Path(weights).is_file()
    state, jit = read_clip_file(Path(weights)) if local else (None, False)
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
