"""CLIP weights for the text tower (``prompt.pretrained``) and the Tab. 4 image towers: one loader.

``load_clip(arch, pretrained) -> open_clip CLIP`` (fp32, CPU, eval) where ``pretrained`` is

- an open_clip tag (``openai``, ``laion2b_s34b_b88k``, ...): ``open_clip.create_model`` with the
  activation the tag's weights were trained with (``quick_gelu`` of open_clip's pretrained table),
  i.e. ``force_quick_gelu=True`` for ``openai`` on the plain ``ViT-B-16`` config.  Tags download from
  a hub, so they only work where the network (or a filled HF cache) is; jobs of the DAG run with
  the hubs switched off and use local files (the ``weights`` download rules);
- a local file in OpenAI's format: the JIT archive OpenAI publishes (``ViT-B-16.pt``, what open_clip's
  ``openai`` URL serves) or a state dict carrying OpenAI's bookkeeping entries (``input_resolution``,
  ``context_length``, ``vocab_size``).  The model is built from the weights' own shapes with
  QuickGELU (``build_model_from_openai_state_dict``) and its shapes are checked against ``arch``;
- any other local state dict (open_clip's format, ``state_dict``/``module.`` wrappers allowed):
  built as ``arch`` says (``-quickgelu`` arch names select QuickGELU) and loaded strictly.

OpenAI weights ALWAYS get QuickGELU: with GELU the ViT-B/16 prompt features differ from the
official encoder by up to 2.6e-2 (features ~1.6).  A weights/activation mismatch that cannot be
fixed (a QuickGELU arch on weights trained with GELU) is a ``ConfigError``, never open_clip's warning.

Architectures: every open_clip config, plus the configs in ``clip_configs/`` (registered here on
import): ``mesc3d-TinyCLIP-quickgelu`` is a 2-layer, width-64 CLIP in OpenAI's layout (heads =
width / 64, as OpenAI's loader infers them) used by the tests and the Slurm rehearsal.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from mesc3d.errors import BadInputError, ConfigError
from mesc3d.safe_load import load_torch, state_dict_of

log = logging.getLogger(__name__)

CONFIG_DIR = Path(__file__).with_name("clip_configs")
OPENAI_MARKERS = ("input_resolution", "context_length", "vocab_size")  # entries only OpenAI's files carry
_REGISTERED = False


def register_configs() -> None:
    """Make the architectures of ``clip_configs/`` known to open_clip (idempotent)."""
    global _REGISTERED
    if not _REGISTERED:
        import open_clip

        open_clip.add_model_config(CONFIG_DIR)
        _REGISTERED = True


def model_config(arch: str, key: str = "prompt.open_clip_arch") -> dict:
    import open_clip

    register_configs()
    cfg = open_clip.get_model_config(arch)
    if cfg is None:
        raise ConfigError(f"{key} {arch!r} is not an open_clip architecture")
    return cfg


def uses_quick_gelu(model: nn.Module) -> bool:
    """True when the model's transformer MLPs use QuickGELU (x * sigmoid(1.702 x))."""
    from open_clip.transformer import QuickGELU

    return any(isinstance(m, QuickGELU) for m in model.modules())


def is_local(pretrained: str) -> bool:
    return "/" in pretrained or pretrained.endswith((".pt", ".pth", ".bin", ".safetensors")) or Path(pretrained).is_file()


def load_clip(arch: str, pretrained: str, key: str = "prompt.pretrained") -> nn.Module:
    """The whole open_clip CLIP model of ``arch`` with ``pretrained`` weights (see module docstring)."""
    if not pretrained:
        raise ValueError("load_clip needs weights (a tag or a file)")
    arch_cfg = model_config(arch)
    if is_local(pretrained):
        model, openai = _from_file(arch, arch_cfg, pretrained, key)
    else:
        model, openai = _from_tag(arch, arch_cfg, pretrained, key)
    model = model.float().eval()
    if openai and not uses_quick_gelu(model):  # never reached with the builders above; a guard for open_clip changes
        raise RuntimeError(f"{key} {pretrained!r}: OpenAI weights were built without QuickGELU")
    return model


def _from_tag(arch: str, arch_cfg: dict, tag: str, key: str) -> tuple[nn.Module, bool]:
    import open_clip

    pcfg = open_clip.get_pretrained_cfg(arch, tag) or open_clip.get_pretrained_cfg(arch.removesuffix("-quickgelu"), tag)
    if not pcfg:
        raise ConfigError(f"{key} {tag!r} is neither a local file nor an open_clip pretrained tag of {arch!r} "
                          f"(tags: {open_clip.list_pretrained_tags_by_model(arch)})")
    quick = bool(pcfg.get("quick_gelu", False))
    if arch_cfg.get("quick_gelu", False) and not quick:
        raise ConfigError(f"{key} {tag!r}: these weights were trained with GELU but arch {arch!r} uses QuickGELU; "
                          f"use {arch.removesuffix('-quickgelu')!r}")
    if quick and not arch_cfg.get("quick_gelu", False):
        log.info("%s %r: weights trained with QuickGELU, building %s with QuickGELU", key, tag, arch)
    try:
        model = open_clip.create_model(arch, pretrained=tag, device="cpu", force_quick_gelu=quick,
                                       require_pretrained=True)
    except (RuntimeError, OSError, ValueError) as err:
        raise ConfigError(f"{key} {tag!r} for {arch}: cannot load ({str(err).splitlines()[0][:200]}); jobs run "
                          "with the hubs switched off (HF_HUB_OFFLINE=1): give the local file that the "
                          "workflow's `weights` download rule fetches") from None
    return model, tag == "openai" or quick


def read_clip_file(path: Path) -> tuple[dict, bool]:
    """(state dict, is a TorchScript archive).  JIT archives are only read for their tensors."""
    try:
        jit = torch.jit.load(str(path), map_location="cpu")
        return {k: v for k, v in jit.state_dict().items()}, True
    except (RuntimeError, ValueError):
        pass
    return state_dict_of(load_torch(path), path, "a CLIP state dict or OpenAI JIT archive"), False


def _from_file(arch: str, arch_cfg: dict, pretrained: str, key: str) -> tuple[nn.Module, bool]:
    import open_clip
    from open_clip.model import build_model_from_openai_state_dict

    path = Path(pretrained)
    if not path.is_file():
        raise ConfigError(f"{key} {pretrained!r}: no such file (the workflow's `weights` download rule fetches it)")
    state, jit = read_clip_file(path)
    openai = jit or any(k in state for k in OPENAI_MARKERS)
    if openai:
        state.pop("attn_mask", None)  # a buffer that traced (JIT) CLIP archives may carry; rebuilt by open_clip
        try:
            model = build_model_from_openai_state_dict(dict(state), quick_gelu=True, cast_dtype=None)
        except (KeyError, RuntimeError) as err:
            raise BadInputError(path, f"not a CLIP model in OpenAI's format ({str(err).splitlines()[0][:160]})") from None
        _check_shapes(model, arch, arch_cfg, path)
        return model, True
    model = open_clip.create_model(arch, pretrained=None, device="cpu")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise BadInputError(path, f"not an open_clip {arch} state dict ({str(err).splitlines()[0][:160]})") from None
    return model, False


def _check_shapes(model: nn.Module, arch: str, arch_cfg: dict, path: Path) -> None:
    """The OpenAI file's inferred shapes must be those of the configured architecture."""
    t, v = arch_cfg["text_cfg"], arch_cfg["vision_cfg"]
    want = {"embed_dim": arch_cfg["embed_dim"], "text width": t.get("width", 512), "text layers": t.get("layers", 12),
            "vision width": v.get("width", 768), "vision layers": v.get("layers", 12),
            "patch size": v.get("patch_size", 16)}
    visual = model.visual
    got = {"embed_dim": int(model.text_projection.shape[1]), "text width": int(model.ln_final.weight.shape[0]),
           "text layers": len(model.transformer.resblocks), "vision width": int(visual.conv1.weight.shape[0]),
           "vision layers": len(visual.transformer.resblocks), "patch size": int(visual.conv1.weight.shape[-1])}
    bad = {k: (got[k], want[k]) for k in want if got[k] != want[k]}
    if bad:
        raise BadInputError(path, f"OpenAI CLIP weights do not fit arch {arch!r}: " +
                            ", ".join(f"{k} {g} (arch: {w})" for k, (g, w) in bad.items()))


def visual_image_size(visual: nn.Module) -> int:
    size = getattr(visual, "image_size", 224)
    return int(size[0] if isinstance(size, (tuple, list)) else size)
