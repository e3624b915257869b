"""OpenAI CLIP weights always get QuickGELU; Tab. 4 image towers load the same CLIP.

The reference is an independent plain-torch forward of OpenAI's CLIP text encoder (QuickGELU MLPs,
causal pre-LN blocks, ln_final, EOT token @ text_projection) computed straight from the state dict.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mesc3d.errors import BadInputError, ConfigError
from weights_layouts import TINY_CLIP, write_openai_clip


def reference_text_features(sd: dict, ids: torch.Tensor, quick_gelu: bool = True) -> torch.Tensor:
    """OpenAI CLIP ``encode_text`` from the state dict alone: ids (B, 77) -> (B, embed_dim)."""
    x = sd["token_embedding.weight"][ids] + sd["positional_embedding"]  # (B, L, W)
    n = ids.shape[1]
    width = x.shape[-1]
    heads = width // 64
    mask = torch.full((n, n), float("-inf")).triu_(1)
    layers = sorted({int(k.split(".")[2]) for k in sd if k.startswith("transformer.resblocks.")})
    for i in layers:
        p = f"transformer.resblocks.{i}."
        h = F.layer_norm(x, (width,), sd[p + "ln_1.weight"], sd[p + "ln_1.bias"])
        qkv = h @ sd[p + "attn.in_proj_weight"].T + sd[p + "attn.in_proj_bias"]  # (B, L, 3W)
        q, k, v = (t.reshape(*t.shape[:2], heads, -1).transpose(1, 2) for t in qkv.chunk(3, -1))
        att = torch.softmax(q @ k.transpose(-1, -2) / (q.shape[-1] ** 0.5) + mask, -1) @ v
        att = att.transpose(1, 2).reshape(x.shape)
        x = x + att @ sd[p + "attn.out_proj.weight"].T + sd[p + "attn.out_proj.bias"]
        h = F.layer_norm(x, (width,), sd[p + "ln_2.weight"], sd[p + "ln_2.bias"])
        h = h @ sd[p + "mlp.c_fc.weight"].T + sd[p + "mlp.c_fc.bias"]
        h = h * torch.sigmoid(1.702 * h) if quick_gelu else F.gelu(h)
        x = x + h @ sd[p + "mlp.c_proj.weight"].T + sd[p + "mlp.c_proj.bias"]
    x = F.layer_norm(x, (width,), sd["ln_final.weight"], sd["ln_final.bias"])
    return x[torch.arange(len(ids)), ids.argmax(-1)] @ sd["text_projection"]  # EOT has the largest id


@pytest.fixture(scope="module", params=["jit", "state_dict"])
def openai_file(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("clip") / f"tiny-{request.param}.pt"
    state = write_openai_clip(path, request.param)
    return path, state


def test_openai_file_gets_quick_gelu_and_matches_reference(openai_file):
    from mesc3d.models.clip_weights import uses_quick_gelu
    from mesc3d.models.text_towers import build_tower

    path, state = openai_file
    tower = build_tower("open_clip", TINY_CLIP, str(path))
    assert uses_quick_gelu(tower.text)
    ids = tower.tokenizer(["a photo of a chair", "table"])
    ref = reference_text_features(state, ids)
    got = tower.reference_encode(["a photo of a chair", "table"])
    assert (got - ref).abs().max() < 1e-5
    gelu = reference_text_features(state, ids, quick_gelu=False)
    assert (gelu - ref).abs().max() > 1e-3  # the activation matters: the test would see a GELU build


def test_openai_file_on_gelu_arch_still_gets_quick_gelu(tmp_path):
    """An OpenAI file is OpenAI's whatever the arch name says: never GELU (arch ViT-B-16 = GELU config)."""
    from mesc3d.models.clip_weights import load_clip, uses_quick_gelu

    path = tmp_path / "tiny.pt"
    write_openai_clip(path, "jit")
    with pytest.raises(BadInputError, match="do not fit arch 'ViT-B-16'"):
        load_clip("ViT-B-16", str(path))  # shapes are checked against the arch
    assert uses_quick_gelu(load_clip(TINY_CLIP, str(path)))


def test_openai_tag_forces_quick_gelu(monkeypatch):
    """`openai` on the plain ViT-B-16 config: open_clip is asked for QuickGELU (it only warns by itself)."""
    import open_clip

    from mesc3d.models import clip_weights

    seen = {}
    real_create = open_clip.create_model

    def fake_create(arch, pretrained=None, **kw):
        seen.update(kw, arch=arch, pretrained=pretrained)
        return real_create(TINY_CLIP, pretrained=None, force_quick_gelu=kw.get("force_quick_gelu"))

    monkeypatch.setattr(open_clip, "create_model", fake_create)
    model = clip_weights.load_clip("ViT-B-16", "openai")
    assert seen["force_quick_gelu"] is True and seen["pretrained"] == "openai"
    assert clip_weights.uses_quick_gelu(model)


def test_activation_mismatch_is_an_error():
    from mesc3d.models.clip_weights import load_clip

    with pytest.raises(ConfigError, match="trained with GELU but arch 'ViT-B-16-quickgelu' uses QuickGELU"):
        load_clip("ViT-B-16-quickgelu", "laion2b_s34b_b88k")


def test_tag_offline_is_a_clear_error(monkeypatch):
    from mesc3d.models.clip_weights import load_clip

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import open_clip

    def offline(*a, **k):
        raise RuntimeError("Cannot reach the hub: offline mode is enabled")

    monkeypatch.setattr(open_clip, "create_model", offline)
    with pytest.raises(ConfigError, match="hubs switched off"):
        load_clip("ViT-B-16", "openai")


def _clip_cfg(which, weights=""):
    from mesc3d.config import from_dict

    return from_dict({"preset": "small", "data": {"source": "synthetic", "root": "r", "prepared": "p", "image_size": 32},
                      "model": {"image_encoder": which, "clip_arch": TINY_CLIP, "n_tokens": 4, "token_dim": 16},
                      "prompt": {"text_backend": "open_clip", "open_clip_arch": TINY_CLIP, "pretrained": weights}})


@pytest.mark.parametrize("which", ["clip_frozen", "clip_finetune"])
def test_tab4_image_tower_loads_the_same_clip(openai_file, which):
    from mesc3d.models.clip_weights import uses_quick_gelu
    from mesc3d.models.image_encoder import build_image_encoder

    path, state = openai_file
    cfg = _clip_cfg(which, str(path))
    enc = build_image_encoder(cfg.model, cfg.data, cfg.prompt.pretrained)
    assert uses_quick_gelu(enc.backbone)
    own = enc.backbone.state_dict()
    for k, v in state.items():
        if k.startswith("visual."):
            assert torch.equal(own[k[len("visual."):]], v.float()), k
    assert enc(torch.rand(1, 3, 32, 32)).shape == (1, 4, 16)


def test_random_image_tower_is_refused_outside_tests(monkeypatch):
    from mesc3d.models.backbones import ALLOW_RANDOM_CLIP_ENV
    from mesc3d.models.image_encoder import build_image_encoder

    monkeypatch.delenv(ALLOW_RANDOM_CLIP_ENV, raising=False)
    cfg = _clip_cfg("clip_frozen")
    with pytest.raises(ConfigError, match="random CLIP image tower is refused"):
        build_image_encoder(cfg.model, cfg.data, "")
    monkeypatch.setenv(ALLOW_RANDOM_CLIP_ENV, "1")
    assert build_image_encoder(cfg.model, cfg.data, "")(torch.rand(1, 3, 32, 32)).shape == (1, 4, 16)
