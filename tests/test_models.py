"""Shapes/gradients of every MESC-3D module and of the full model under every flag combination;
parameter counts of the paper preset; the cached sphere tokens; the complexity CLI."""

from __future__ import annotations

import itertools
import json

import pytest
import torch

from mesc3d.config import from_dict
from mesc3d.errors import ConfigError
from mesc3d.models.decoder import (ESMDecoderPaper6, ESMDecoderReleased5, PlainDecoder, fibonacci_sphere,
                                   resolve_widths)
from mesc3d.models.esm import AdaptivePointNorm, SelectionMap
from mesc3d.models.mesc3d import MESC3D, PRIOR_MODES
from mesc3d.models.mit import MIT

TINY_MODEL = {"n_points": 64, "n_tokens": 4, "token_dim": 16, "mit_heads": 4, "mit_depth": 2, "prior_dim": 32,
              "point_mae": {"trans_dim": 32, "heads": 2, "depth": 1, "num_group": 8, "group_size": 8,
                            "template_points": 128, "decoder_depth": 1, "decoder_heads": 2}}


def tiny_cfg(**model):
    m = {**TINY_MODEL, **model}
    return from_dict({"preset": "small", "data": {"image_size": 32}, "model": m})


def _grads_ok(params):
    return all(p.grad is not None and torch.isfinite(p.grad).all() for p in params)


# ------------------------------------------------------------------ modules
def test_selection_map_and_adaptive_point_norm():
    torch.manual_seed(0)
    m = SelectionMap(6, 10, std=0.01)
    w = m.weight.detach()
    assert abs(float(w.std()) - 0.01) < 0.005 and abs(float(w.mean())) < 0.005
    f = torch.randn(2, 6, 1, requires_grad=True)
    s = m(f)
    assert s.shape == (2, 6, 10) and torch.allclose(s, f * m.weight)
    apn = AdaptivePointNorm(4, 6)
    assert torch.equal(apn.style.bias[:4], torch.ones(4)) and torch.equal(apn.style.bias[4:], torch.zeros(4))
    assert 0.8 < float(apn.style.weight.detach().std()) < 1.2  # N(0, 1) init, as the official code
    h = torch.randn(2, 4, 10)
    out = apn(h, s)
    gamma, beta = apn.style(s).chunk(2, 1)
    assert out.shape == (2, 4, 10) and torch.allclose(out, gamma * h + beta)
    out.sum().backward()
    assert _grads_ok([m.weight, apn.style.weight, f])
    with pytest.raises(ValueError, match=r"\(B, 6, 1\)"):
        m(torch.zeros(2, 5, 1))


def test_selection_map_clamp_is_straight_through():
    m = SelectionMap(3, 4, clamp=True)
    with torch.no_grad():
        m.weight.copy_(torch.tensor([[-1.0, 0.5, 2.0, 0.2]] * 3))
    s = m(torch.ones(1, 3, 1))
    assert torch.equal(s[0, 0], torch.tensor([0.0, 0.5, 1.0, 0.2]))
    s.sum().backward()
    assert torch.equal(m.weight.grad, torch.ones(3, 4))  # entries outside [0, 1] still learn


def test_mit_interlacing_and_extra_tokens():
    torch.manual_seed(0)
    mit = MIT(16, 4, 4, drop=0.2, attn_drop=0.2, drop_path=0.2)
    img, pc, extra = torch.randn(2, 5, 16), torch.randn(2, 3, 16), torch.randn(2, 2, 16)
    out = mit(img, pc)
    assert out.shape == (2, 5, 16)
    out.square().sum().backward()
    assert _grads_ok(mit.parameters())
    mit.eval()
    # block 0 updates only the point stream: with depth 1 the image stream passes through unchanged
    one = MIT(16, 4, 1).eval()
    assert torch.equal(one(img, pc), img)
    a, b = mit(img, pc), mit(img, pc, extra)
    assert a.shape == b.shape and not torch.allclose(a, b)  # extra tokens take part in cross-attention
    with pytest.raises(ValueError, match="pc tokens"):
        mit(img, torch.randn(2, 3, 8))


def test_mit_param_count_matches_paper():
    assert sum(p.numel() for p in MIT(32, 8, 4).parameters()) == 50816  # 0.051M (docs/design.md)


@pytest.mark.parametrize("cls", [ESMDecoderPaper6, ESMDecoderReleased5, PlainDecoder])
def test_decoders_shape_and_gradient(cls):
    torch.manual_seed(0)
    widths = (24, 16, 8, 8, 8, 8, 8) if cls is ESMDecoderReleased5 else (24, 16, 8)
    dec = cls(20, widths, 50)
    feat = torch.randn(3, 20, requires_grad=True)
    out = dec(feat)
    assert out.shape == (3, 50, 3) and torch.isfinite(out).all()
    out.square().sum().backward()
    assert _grads_ok(dec.parameters()) and feat.grad is not None
    if cls is ESMDecoderPaper6:
        assert len(dec.maps) == len(widths) + 1  # + the xyz stage
    if cls is ESMDecoderReleased5:
        assert len(dec.maps) == 5 and out.abs().max() <= 1.0  # tanh head
    with pytest.raises(ValueError, match=r"\(B, 20\)"):
        dec(torch.zeros(3, 21))


def test_widths_and_sphere():
    paper = from_dict({"preset": "paper"}).model
    assert resolve_widths(paper) == (512, 256, 128, 64, 32)
    rel = from_dict({"preset": "paper", "model": {"esm_variant": "released5"}}).model
    assert resolve_widths(rel) == (1024, 768, 512, 256, 128, 64, 32)
    s = fibonacci_sphere(2048)
    assert s.shape == (2048, 3) and abs(float(s.norm(dim=1).max()) - 0.5) < 1e-6
    assert float(s.mean(0).abs().max()) < 1e-6


def test_image_encoder_resnet_tokens():
    from mesc3d.models.image_encoder import build_image_encoder
    from mesc3d.registries import IMAGE_ENCODERS

    cfg = tiny_cfg(resnet_width=64)  # torchvision's ResNet-18 (the small preset narrows it to 32)
    enc = build_image_encoder(cfg.model, cfg.data)
    out = enc(torch.rand(2, 3, 32, 32))
    assert out.shape == (2, 4, 16)
    assert set(IMAGE_ENCODERS) >= {"resnet18", "clip_frozen", "clip_finetune"}
    n = sum(p.numel() for p in enc.parameters())
    assert n == 11689512 + 1000 * 64 + 64


@pytest.mark.parametrize("which", ["clip_frozen", "clip_finetune"])
def test_image_encoder_clip_plugins(which, monkeypatch):
    from mesc3d.models.backbones import ALLOW_RANDOM_CLIP_ENV
    from mesc3d.models.image_encoder import build_image_encoder

    monkeypatch.setenv(ALLOW_RANDOM_CLIP_ENV, "1")  # random towers: tests only

    cfg = tiny_cfg(image_encoder=which)
    enc = build_image_encoder(cfg.model, cfg.data)
    enc.train()
    out = enc(torch.rand(1, 3, 32, 32))
    assert out.shape == (1, 4, 16)
    out.sum().backward()
    assert enc.linear.weight.grad is not None
    tower_grads = [p.grad is not None for p in enc.backbone.parameters()]
    if which == "clip_frozen":
        assert not any(tower_grads) and not enc.backbone.training
    else:
        assert all(tower_grads) and enc.backbone.training


# ------------------------------------------------------------------ the full model
COMBOS = [(esm, mode) for esm, mode in itertools.product(["paper6", "released5", "plain"], PRIOR_MODES)]


@pytest.mark.parametrize("esm,mode", COMBOS)
def test_full_model_every_flag_combination(esm, mode):
    torch.manual_seed(0)
    flags = {"use_esm": esm != "plain", "prior_injection": mode}
    if esm != "plain":
        flags["esm_variant"] = esm
    model = MESC3D(tiny_cfg(**flags), prior_in_dim=24).train()
    images = torch.rand(2, 3, 32, 32)
    prior = None if mode == "none" else torch.randn(2, 24)
    out = model(images, prior)
    assert out.shape == (2, 64, 3) and torch.isfinite(out).all()
    out.square().mean().backward()
    trainable = model.trainable_parameters(with_prior=True)
    assert _grads_ok(trainable)
    assert all(p.grad is None for p in model.point_encoder.parameters())
    assert (model.telinear is None) == (mode == "none")
    if mode != "none":
        assert len(model.trainable_parameters(False)) == len(trainable) - 2  # telinear weight + bias
        model.eval()
        with torch.no_grad():
            assert model(images, None).shape == (2, 64, 3)  # prior=None -> zero prior feature


@pytest.mark.parametrize("flags", [{"esm_clamp": True}, {"telinear_trainable": False},
                                   {"decoder_widths": [16, 8]}, {"mit_depth": 3, "mit_heads": 2}])
def test_full_model_other_flags(flags):
    torch.manual_seed(0)
    model = MESC3D(tiny_cfg(**flags), prior_in_dim=24).train()
    out = model(torch.rand(2, 3, 32, 32), torch.randn(2, 24))
    assert out.shape == (2, 64, 3)
    out.sum().backward()
    if flags.get("telinear_trainable") is False:
        assert not model.telinear.weight.requires_grad
        assert all(p is not model.telinear.weight for p in model.trainable_parameters(True))
    if "decoder_widths" in flags:
        assert len(model.decoder.maps) == 3


def test_full_model_clip_frozen_and_amp(monkeypatch):
    monkeypatch.setenv("MESC3D_TEST_ALLOW_RANDOM_CLIP", "1")  # random towers: tests only
    torch.manual_seed(0)
    model = MESC3D(tiny_cfg(image_encoder="clip_frozen"), prior_in_dim=24).eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.rand(1, 3, 32, 32), torch.randn(1, 24))
    assert out.shape == (1, 64, 3) and torch.isfinite(out.float()).all()


def test_bad_inputs_and_configs():
    model = MESC3D(tiny_cfg(), prior_in_dim=24)
    with pytest.raises(ValueError, match="prior must have shape"):
        model(torch.rand(2, 3, 32, 32), torch.randn(2, 12))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        model(torch.rand(2, 32, 32))
    with pytest.raises(ConfigError, match="divisible"):
        MESC3D(tiny_cfg(prior_injection="fuse_in_mit", prior_dim=20))


# ------------------------------------------------------------------ frozen sphere tokens
def test_cached_sphere_tokens_equal_fresh_eval_computation(tmp_path):
    from mesc3d.models.point_mae import PointMAEEncoder

    torch.manual_seed(0)
    cfg = tiny_cfg(mit_drop_path=0.2)
    model = MESC3D(cfg, prior_in_dim=24)
    # an independent fresh computation: same weights, eval mode, the Fibonacci sphere of radius 0.5
    fresh_enc = PointMAEEncoder(cfg.model.point_mae)
    fresh_enc.load_state_dict(model.point_encoder.state_dict())
    fresh_enc.eval()
    with torch.no_grad():
        fresh = fresh_enc(fibonacci_sphere(128, 0.5)[None]).reshape(1, -1, 16)
    assert model.template_tokens.shape == (1, 4, 16)  # 2*32 / 16 point tokens
    assert torch.equal(model.template_tokens, fresh)
    # train mode never reaches the frozen encoder: BN stats and the cache stay put
    bn = model.point_encoder.encoder.first_conv[1]
    stats = bn.running_mean.clone()
    model.train()
    assert model.training and not model.point_encoder.training
    model(torch.rand(2, 3, 32, 32), torch.randn(2, 24)).sum().backward()
    assert torch.equal(bn.running_mean, stats)
    assert torch.equal(model.template_tokens, model.compute_template_tokens())
    # loading Point-MAE weights refreshes the cache; the buffer travels with the state dict
    other = PointMAEEncoder(cfg.model.point_mae)
    path = tmp_path / "pm.pt"
    torch.save({"base_model": other.state_dict()}, path)
    model.load_point_encoder(path)
    assert torch.equal(model.template_tokens, model.compute_template_tokens())
    assert not torch.equal(model.template_tokens, fresh)
    assert "template_tokens" in model.state_dict()


# ------------------------------------------------------------------ parameter counts
def test_paper_preset_parameter_counts():
    torch.manual_seed(0)
    without = MESC3D(from_dict({"preset": "paper", "model": {"prior_injection": "none"}})).parameter_counts()
    # docs/design.md: ResNet18 11.690M + Linear 0.769M + MIT 0.051M + convs 0.569M + maps 9.437M + APN 1.530M
    assert without["trainable"] == 11689512 + 768768 + 50816 + 569376 + 9437184 + 1530310 == 24045966
    assert abs(without["trainable"] / 24.05e6 - 1) < 0.01
    assert without["point_encoder_trainable"] == 0 and without["point_encoder_total"] > 21e6
    withp = MESC3D(from_dict({"preset": "paper"})).parameter_counts()  # concat -> 1280, paper6
    extra = 6 * 512 * 2048 + 512 * 512 + 512 * 2 * 995 + (512 * 512 + 512)  # maps, conv1, APN, telinear
    assert withp["trainable"] == 24045966 + extra


def test_complexity_cli_json(capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from mesc3d.cli import complexity

    assert complexity.main(["--preset", "small", "--json", "--set", "prompt.text_backend=open_clip"]) == 0
    data = json.loads(capsys.readouterr().out)
    for key in ("params_trainable_without_prior", "params_trainable_with_prior", "params_total",
                "prior_params_source", "paper_params_without_prior_M", "paper_params_with_prior_M"):
        assert key in data
    assert data["params_trainable_with_prior"] > data["params_trainable_without_prior"]
    assert data["params_total"] > data["params_trainable_with_prior"]


def test_complexity_cli_csv(tmp_path, monkeypatch):
    import pandas as pd

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from mesc3d.cli import complexity

    monkeypatch.setattr(complexity, "N_POINTS", (64, 128))
    run = tmp_path / "run.yaml"
    run.write_text("name: tiny\npreset: small\ndata: {image_size: 32}\neval: {latency_repeats: 2}\n"
                   "prompt: {text_backend: open_clip, n_deep: 2}\n"
                   "model: {n_tokens: 4, token_dim: 16, mit_heads: 4, prior_dim: 32, point_mae: {trans_dim: 32,"
                   " heads: 2, depth: 1, num_group: 8, group_size: 8, template_points: 128}}\n")
    out = tmp_path / "complexity" / "tiny.csv"
    assert complexity.main(["--config", str(run), "--out", str(out), "--device", "cpu"]) == 0
    df = pd.read_csv(out)
    assert list(df.columns) == complexity.CSV_COLUMNS
    assert len(df) == 4 and set(df["prior"]) == {"with", "without"} and set(df["n_points"]) == {64, 128}
    assert (df["latency_s"] > 0).all() and (df["flops_per_image"] > 0).all() and (df["device"] == "cpu").all()


def test_resnet_width():
    """64 is torchvision's ResNet-18 module for module; 32 (the small preset) keeps the layout at a
    quarter of the weights; ImageNet weights need 64 (one line naming both keys)."""
    from torchvision.models import resnet18

    from mesc3d.models.backbones import resnet18_backbone

    full = resnet18_backbone(from_dict({"preset": "paper"}).model)
    ref = resnet18(weights=None)
    assert [(k, v.shape) for k, v in full.state_dict().items()] == [(k, v.shape) for k, v in ref.state_dict().items()]
    small = from_dict({"preset": "small"}).model
    assert small.resnet_width == 32
    narrow = resnet18_backbone(small)
    assert list(narrow.state_dict()) == list(ref.state_dict())  # same modules, narrower
    n_full, n_narrow = (sum(p.numel() for p in m.parameters()) for m in (full, narrow))
    assert n_full == 11_689_512 and n_narrow < 0.3 * n_full
    assert narrow(torch.rand(2, 3, 64, 64)).shape == (2, 1000)
    with pytest.raises(ConfigError, match="model.resnet_width"):
        resnet18_backbone(from_dict({"preset": "small", "model": {"image_weights": "w.pth"}}).model)
    with pytest.raises(ConfigError, match="model.resnet_width"):
        from_dict({"preset": "small", "model": {"resnet_width": 4}})


@pytest.mark.parametrize("variant,clamp", [("paper6", False), ("paper6", True), ("released5", False)])
def test_decoder_factored_modulation_equals_the_explicit_selection(variant, clamp):
    """The decoders never form S = M ⊙ F (``SelectionMap.conv``); the explicit path is the reference."""
    cfg = from_dict({"preset": "small", "model": {"esm_variant": variant, "esm_clamp": clamp}})
    torch.manual_seed(0)
    d = build_decoder_for_test(cfg.model, 40).double()
    with torch.no_grad():
        for m in d.maps:
            m.weight.normal_()  # entries outside [0, 1], so the clamp matters
    f = torch.randn(3, 40, dtype=torch.double)
    F = f[:, :, None]
    if variant == "paper6":
        s = d.maps[0](F)
        x = d.adains[0](d.convs[0](s), s)
        for k in range(1, len(d.convs)):
            x = d.adains[k](d.convs[k](x), d.maps[k](F))
        ref = d.adains[-1](torch.tanh(d.tail(x)), d.maps[-1](F)).transpose(1, 2)
    else:
        x = F.expand(-1, -1, d.n_points)
        for k, conv in enumerate(d.convs):
            x = conv(x)
            if k < len(d.maps):
                x = d.adains[k](x, d.maps[k](F))
        ref = torch.tanh(d.tail(x)).transpose(1, 2)
    torch.testing.assert_close(d(f), ref, rtol=1e-10, atol=1e-10)


def build_decoder_for_test(model_cfg, in_dim):
    from mesc3d.models.decoder import build_decoder

    return build_decoder(model_cfg, in_dim)
