"""Point-MAE encoder, official-checkpoint loader (both key layouts), MAE objective and its CLI."""

from __future__ import annotations

import argparse
from collections import OrderedDict

import numpy as np
import pytest
import torch

from mesc3d.config import PointMAECfg, from_dict
from mesc3d.errors import BadInputError
from mesc3d.models.point_mae import PointMAEEncoder, load_pointmae_checkpoint
from mesc3d.models.point_mae_pretrain import PointMAEPretrain, random_patch_mask

TINY = PointMAECfg(trans_dim=32, depth=2, heads=2, num_group=8, group_size=8, template_points=128,
                   decoder_depth=1, decoder_heads=2)


def official_encoder_shapes(d: int = 384, depth: int = 12) -> "OrderedDict[str, tuple]":
    """Key names/shapes of the encoder part of Point-MAE ``modelnet_1k.pth`` (written out by hand)."""
    s: "OrderedDict[str, tuple]" = OrderedDict()
    s["cls_token"], s["cls_pos"] = (1, 1, d), (1, 1, d)

    def bn(prefix, c):
        s[f"{prefix}.weight"], s[f"{prefix}.bias"] = (c,), (c,)
        s[f"{prefix}.running_mean"], s[f"{prefix}.running_var"] = (c,), (c,)
        s[f"{prefix}.num_batches_tracked"] = ()

    s["encoder.first_conv.0.weight"], s["encoder.first_conv.0.bias"] = (128, 3, 1), (128,)
    bn("encoder.first_conv.1", 128)
    s["encoder.first_conv.3.weight"], s["encoder.first_conv.3.bias"] = (256, 128, 1), (256,)
    s["encoder.second_conv.0.weight"], s["encoder.second_conv.0.bias"] = (512, 512, 1), (512,)
    bn("encoder.second_conv.1", 512)
    s["encoder.second_conv.3.weight"], s["encoder.second_conv.3.bias"] = (d, 512, 1), (d,)
    s["pos_embed.0.weight"], s["pos_embed.0.bias"] = (128, 3), (128,)
    s["pos_embed.2.weight"], s["pos_embed.2.bias"] = (d, 128), (d,)
    for i in range(depth):
        p = f"blocks.blocks.{i}"
        s[f"{p}.norm1.weight"], s[f"{p}.norm1.bias"] = (d,), (d,)
        s[f"{p}.attn.qkv.weight"] = (3 * d, d)  # no qkv bias
        s[f"{p}.attn.proj.weight"], s[f"{p}.attn.proj.bias"] = (d, d), (d,)
        s[f"{p}.norm2.weight"], s[f"{p}.norm2.bias"] = (d,), (d,)
        s[f"{p}.mlp.fc1.weight"], s[f"{p}.mlp.fc1.bias"] = (4 * d, d), (4 * d,)
        s[f"{p}.mlp.fc2.weight"], s[f"{p}.mlp.fc2.bias"] = (d, 4 * d), (d,)
    s["norm.weight"], s["norm.bias"] = (d,), (d,)
    return s


def _rand(shape, gen):
    if shape == ():
        return torch.tensor(7)
    return torch.randn(shape, generator=gen)


def _cloud(B=2, N=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, N, 3, generator=g)
    return x / x.norm(dim=-1, keepdim=True) * 0.5


def test_encoder_shape_gradient_and_grouping():
    torch.manual_seed(0)
    enc = PointMAEEncoder(TINY)
    x = _cloud()
    out = enc(x)
    assert out.shape == (2, 64) and torch.isfinite(out).all()
    out.square().sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in enc.parameters())
    groups, center = enc.group_divider(x)
    assert groups.shape == (2, 8, 8, 3) and center.shape == (2, 8, 3)
    assert torch.equal(center[:, 0], x[:, 0])  # FPS starts at index 0
    # the centre is its own nearest neighbour -> first point of each centred group is 0
    assert torch.allclose(groups[:, :, 0], torch.zeros(2, 8, 3), atol=1e-7)
    with pytest.raises(ValueError, match=r"\(B, N, 3\)"):
        enc(torch.zeros(2, 100, 2))


def test_encoder_names_and_shapes_match_official_modelnet_1k():
    enc = PointMAEEncoder(PointMAECfg())  # paper sizes: dim 384, depth 12
    own = {k: tuple(v.shape) for k, v in enc.state_dict().items()}
    assert own == dict(official_encoder_shapes())


def _official_finetune_ckpt(gen) -> dict:
    shapes = official_encoder_shapes()
    head = {"cls_head_finetune.0.weight": (256, 768), "cls_head_finetune.0.bias": (256,),
            "cls_head_finetune.1.weight": (256,), "cls_head_finetune.4.weight": (256, 256),
            "cls_head_finetune.8.weight": (40, 256), "cls_head_finetune.8.bias": (40,)}
    base = {f"module.{k}": _rand(s, gen) for k, s in {**shapes, **head}.items()}  # DataParallel prefix
    return {"base_model": base, "optimizer": {"state": {}, "param_groups": [{"lr": 0.0005}]},
            "epoch": 299, "metrics": {"acc": 93.8}, "best_metrics": {"acc": 93.8}}


def test_loader_reads_modelnet_1k_layout(tmp_path):
    gen = torch.Generator().manual_seed(1)
    ckpt = _official_finetune_ckpt(gen)
    path = tmp_path / "modelnet_1k.pth"
    torch.save(ckpt, path)
    enc = PointMAEEncoder(PointMAECfg())
    report = load_pointmae_checkpoint(enc, path)
    assert report.layout == "finetune" and report.missing == []
    assert report.unexpected and all(k.startswith("cls_head_finetune.") for k in report.unexpected)
    state = enc.state_dict()
    for k in official_encoder_shapes():
        assert torch.equal(state[k], ckpt["base_model"][f"module.{k}"]), k


def test_loader_reads_pretrain_layout_without_cls(tmp_path):
    gen = torch.Generator().manual_seed(2)
    shapes = official_encoder_shapes()
    enc_keys = {k: s for k, s in shapes.items() if k not in ("cls_token", "cls_pos")}
    base = {f"MAE_encoder.{k}": _rand(s, gen) for k, s in enc_keys.items()}
    base.update({"mask_token": _rand((1, 1, 384), gen), "decoder_pos_embed.0.weight": _rand((128, 3), gen),
                 "decoder_pos_embed.2.weight": _rand((384, 128), gen),
                 "MAE_decoder.blocks.0.attn.qkv.weight": _rand((1152, 384), gen),
                 "MAE_decoder.norm.weight": _rand((384,), gen),
                 "increase_dim.0.weight": _rand((96, 384, 1), gen), "increase_dim.0.bias": _rand((96,), gen)})
    path = tmp_path / "pretrain.pth"
    torch.save({"base_model": base, "epoch": 300}, path)
    torch.manual_seed(0)
    enc = PointMAEEncoder(PointMAECfg())
    cls_before = enc.cls_token.detach().clone()
    report = load_pointmae_checkpoint(enc, path)
    assert report.layout == "pretrain"
    assert report.missing == ["cls_pos", "cls_token"]
    assert "mask_token" in report.unexpected and "increase_dim.0.weight" in report.unexpected
    assert torch.equal(enc.cls_token, cls_before)  # missing -> keeps its init
    assert torch.equal(enc.state_dict()["blocks.blocks.3.attn.qkv.weight"],
                       base["MAE_encoder.blocks.blocks.3.attn.qkv.weight"])


def test_loader_refuses_pickled_objects_and_bad_files(tmp_path):
    enc = PointMAEEncoder(TINY)
    bad = tmp_path / "pickled.pth"
    torch.save({"base_model": enc.state_dict(), "args": argparse.Namespace(lr=1)}, bad)
    with pytest.raises(BadInputError, match="pickled Python objects") as err:
        load_pointmae_checkpoint(enc, bad)
    assert str(bad) in str(err.value)
    with pytest.raises(BadInputError, match="does not exist"):
        load_pointmae_checkpoint(enc, tmp_path / "nope.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(BadInputError, match="not a readable torch checkpoint"):
        load_pointmae_checkpoint(enc, junk)
    wrong = tmp_path / "wrong.pth"
    torch.save({"base_model": PointMAEEncoder(PointMAECfg(trans_dim=48, depth=2, heads=2)).state_dict()}, wrong)
    with pytest.raises(BadInputError, match="do not fit"):
        load_pointmae_checkpoint(enc, wrong)
    other = tmp_path / "other.pth"
    torch.save({"base_model": {"foo.weight": torch.zeros(2)}}, other)
    with pytest.raises(BadInputError, match="no Point-MAE encoder weights"):
        load_pointmae_checkpoint(enc, other)


def test_mask_and_pretrain_objective():
    torch.manual_seed(0)
    m = random_patch_mask(3, 10, 6, torch.device("cpu"))
    assert m.shape == (3, 10) and (m.sum(1) == 6).all()
    model = PointMAEPretrain(TINY, mask_ratio=0.6)
    x = _cloud(B=2, N=128)
    torch.manual_seed(5)
    loss, parts = model(x, return_parts=True)
    assert loss.dim() == 0 and torch.isfinite(loss) and loss > 0
    assert parts["pred"].shape == (2 * 4, 8, 3) and parts["gt"].shape == (2 * 4, 8, 3)
    loss.backward()
    enc = model.encoder_model
    assert enc.blocks.blocks[0].attn.qkv.weight.grad is not None
    assert model.mask_token.grad is not None and model.increase_dim.weight.grad is not None
    assert enc.cls_token.grad is None  # the MAE encoder runs without CLS, as the official one
    torch.manual_seed(5)
    assert torch.equal(model(x), loss.detach())  # same RNG -> same mask -> same loss
    with pytest.raises(ValueError, match="mask_ratio"):
        PointMAEPretrain(TINY, mask_ratio=0.0)


def test_pretrain_cli_writes_official_layout_deterministically(tmp_path):
    from conftest import pointmae_toy_run

    from mesc3d.cli import pretrain_pointmae
    from mesc3d.io import save_npz

    argv = pointmae_toy_run(tmp_path)
    cfg, sets = tmp_path / "run.yaml", argv[4:][1::2]
    pts = np.load(tmp_path / "train.npz")["points"]
    assert pretrain_pointmae.main(argv + ["--out", str(tmp_path / "a" / "pointmae.pt")]) == 0
    assert pretrain_pointmae.main(argv + ["--out", str(tmp_path / "b.pt")]) == 0
    a = torch.load(tmp_path / "a" / "pointmae.pt", weights_only=True)
    b = torch.load(tmp_path / "b.pt", weights_only=True)
    assert a["step"] == 4 and len(a["losses"]) == 2 and np.isfinite(a["loss"])
    assert set(a["base_model"]) == set(b["base_model"])
    assert all(torch.equal(a["base_model"][k], b["base_model"][k]) for k in a["base_model"])
    run = from_dict({"preset": "small", "model": {"point_mae": {"trans_dim": 32, "depth": 1, "heads": 2,
                                                                 "num_group": 8, "group_size": 8}}})
    enc = PointMAEEncoder(run.model.point_mae)
    report = load_pointmae_checkpoint(enc, tmp_path / "b.pt")
    assert report.layout == "finetune" and report.missing == [] and report.unexpected == []
    assert not list(tmp_path.glob("**/.*tmp*"))  # atomic: no temp files left
    bad = tmp_path / "bad.npz"
    save_npz(bad, points=pts[:, :4])
    with pytest.raises(BadInputError, match="Point-MAE grouping"):
        pretrain_pointmae.main(["--config", str(cfg), "--train", str(bad), "--out", str(tmp_path / "c.pt")]
                               + [a for s in sets for a in ("--set", s)])
    assert not (tmp_path / "c.pt").exists()
