"""Tiny weights files in the official formats, for tests and the Slurm rehearsal.

- ``write_openai_clip(path, fmt)``: a ``mesc3d-TinyCLIP-quickgelu`` CLIP (OpenAI's layout, heads =
  width / 64) saved as OpenAI ships it: ``fmt="jit"`` = a TorchScript archive (what the ``openai``
  URL serves), ``fmt="state_dict"`` = a plain state dict with OpenAI's ``input_resolution`` /
  ``context_length`` / ``vocab_size`` entries.  Returns the state dict (float32).
- ``write_pointmae(path, cfg, layout)``: ``{"base_model": ...}`` in the ``modelnet_1k.pth`` layout
  (``module.`` prefix, classification head) or the ``pretrain.pth`` layout (``MAE_encoder.`` prefix,
  no cls token, MAE decoder entries), for an encoder of ``cfg``'s size.
"""

from __future__ import annotations

from pathlib import Path

import torch

TINY_CLIP = "mesc3d-TinyCLIP-quickgelu"


def tiny_clip_model(seed: int = 0):
    import open_clip

    from mesc3d.models.clip_weights import register_configs

    register_configs()
    torch.manual_seed(seed)
    model = open_clip.create_model(TINY_CLIP, pretrained=None, device="cpu").eval()
    with torch.no_grad():  # OpenAI's init leaves tiny towers nearly constant: spread the weights
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
            p.copy_(p.half().float())  # OpenAI ships float16 weights: keep the values fp16-exact
    return model


def write_openai_clip(path: str | Path, fmt: str = "jit", seed: int = 0) -> dict:
    model = tiny_clip_model(seed)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "jit":
        images = torch.ones(1, 3, 32, 32)
        text = torch.zeros(1, 77, dtype=torch.int)
        traced = torch.jit.trace_module(model, {"encode_text": (text,), "encode_image": (images,)})
        torch.jit.save(traced, str(path))
    elif fmt == "state_dict":
        extra = {"input_resolution": torch.tensor(32), "context_length": torch.tensor(77),
                 "vocab_size": torch.tensor(49408)}
        torch.save({**state, **extra}, path)
    else:
        raise ValueError(fmt)
    return state


def write_pointmae(path: str | Path, cfg, layout: str = "finetune", seed: int = 0) -> dict:
    from mesc3d.models.point_mae import PointMAEEncoder

    torch.manual_seed(seed)
    enc = PointMAEEncoder(cfg)
    state = {k: v.detach().clone() for k, v in enc.state_dict().items()}
    d = int(cfg.trans_dim)
    if layout == "finetune":  # modelnet_1k.pth
        head = {"cls_head_finetune.0.weight": torch.randn(256, 2 * d), "cls_head_finetune.0.bias": torch.zeros(256),
                "cls_head_finetune.8.weight": torch.randn(40, 256), "cls_head_finetune.8.bias": torch.zeros(40)}
        base = {f"module.{k}": v for k, v in {**state, **head}.items()}
        obj = {"base_model": base, "epoch": 299, "metrics": {"acc": 93.8}}
    elif layout == "pretrain":  # pretrain.pth
        base = {f"MAE_encoder.{k}": v for k, v in state.items() if k not in ("cls_token", "cls_pos")}
        base.update({"mask_token": torch.zeros(1, 1, d), "MAE_decoder.norm.weight": torch.ones(d),
                     "increase_dim.0.weight": torch.randn(96, d, 1)})
        obj = {"base_model": base, "epoch": 300}
    else:
        raise ValueError(layout)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, path)
    return state
