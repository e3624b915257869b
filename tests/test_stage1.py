"""Stage 1 (3DSPL): contrastive loss, temperature, HDF5 feature cache, cache-features and pretrain-prompt CLIs."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from mesc3d.categories import SEEN, UNSEEN  # noqa: E402
from mesc3d.config import PromptCfg  # noqa: E402
from mesc3d.data.feature_cache import read_feature_cache, remap_class_ids, write_feature_cache  # noqa: E402
from mesc3d.data.priors import load_priors, prior_table  # noqa: E402
from mesc3d.errors import BadInputError  # noqa: E402
from mesc3d.models.prompt_stage1 import (LOGIT_SCALE_MAX, Stage1Model, contrastive_loss,  # noqa: E402
                                         contrastive_loss_naive)

CATS = list(SEEN)
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("class_aware", [False, True])
def test_contrastive_loss_matches_naive(class_aware):
    g = torch.Generator().manual_seed(0)
    pc, txt = torch.randn(6, 8, generator=g), torch.randn(6, 8, generator=g)
    ids = torch.tensor([0, 1, 0, 2, 1, 0])
    fast = contrastive_loss(pc, txt, 3.0, ids, class_aware)
    naive = contrastive_loss_naive(pc, txt, 3.0, ids, class_aware)
    torch.testing.assert_close(fast, naive, atol=1e-5, rtol=1e-5)
    if class_aware:  # identical text columns per class: positives change the text->point direction only
        assert not torch.allclose(fast, contrastive_loss(pc, txt, 3.0, ids, False))
    with pytest.raises(ValueError, match=r"\(B, D\)"):
        contrastive_loss(pc, txt[:3], 1.0)


def test_loss_decreases_and_temperature(tower):
    cfg = PromptCfg(n_ctx_prefix=2, n_ctx_suffix=2, n_deep=2)
    torch.manual_seed(0)
    names = ["chair", "table", "airplane", "lamp"]
    model = Stage1Model(cfg, names, feat_dim=16, tower=tower)
    y = torch.arange(4).repeat(2)  # (8,)
    x = torch.randn(4, 16)[y] + 0.1 * torch.randn(8, 16)  # class-structured toy features
    opt = torch.optim.Adam(model.trainable_parameters(), lr=1e-3)
    losses = []
    for _ in range(10):
        loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        model.clamp_temperature()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0]
    assert all(p.grad is None for p in tower.parameters())
    assert model.logit_scale.grad is not None  # learnable temperature is used in the loss
    with torch.no_grad():
        model.logit_scale.fill_(10.0)
    model.clamp_temperature()
    assert model.scale().item() == pytest.approx(100.0, rel=1e-5)
    assert model.logit_scale.item() == pytest.approx(LOGIT_SCALE_MAX, rel=1e-6)
    ev = model.evaluate(x, y)
    assert ev["chance"] == 0.25 and 0 <= ev["top1"] <= 1

    fixed = Stage1Model(PromptCfg(n_ctx_prefix=1, n_ctx_suffix=1, n_deep=0, temperature="fixed1"), names, 16, tower)
    assert float(fixed.scale()) == 1.0 and all(p is not fixed.logit_scale for p in fixed.trainable_parameters())


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_feature_cache_round_trip(tmp_path, dtype):
    feats = np.random.default_rng(0).normal(size=(5, 12)).astype(np.float32)
    path = tmp_path / "f.h5"
    write_feature_cache(path, feats, ["a", "b", "c", "d", "e"], np.array([0, 1, 2, -1, 0]), ["chair", "table", "lamp"],
                        attrs={"encoder": "pointmae", "checkpoint_sha256": "abc"}, dtype=dtype, chunk_rows=2)
    cache = read_feature_cache(path)
    assert cache.features.dtype == np.float32 and cache.features.shape == (5, 12)
    np.testing.assert_allclose(cache.features, feats, atol=1e-2 if dtype == "float16" else 0)
    assert cache.shape_ids.tolist() == ["a", "b", "c", "d", "e"] and cache.class_ids.tolist() == [0, 1, 2, -1, 0]
    assert cache.categories == ["chair", "table", "lamp"] and cache.attrs["checkpoint_sha256"] == "abc"
    assert remap_class_ids(cache, ["lamp", "chair", "table", "sofa"]).tolist() == [1, 2, 0, -1, 1]
    assert not list(tmp_path.glob(".*tmp*"))  # atomic: no temp leftovers


def test_truncated_or_missing_cache_is_a_clear_error(tmp_path):
    path = tmp_path / "f.h5"
    write_feature_cache(path, np.ones((2000, 64), np.float32), [str(i) for i in range(2000)], np.zeros(2000),
                        ["chair"])
    data = path.read_bytes()
    (tmp_path / "cut.h5").write_bytes(data[: len(data) // 2])
    with pytest.raises(BadInputError, match="cut.h5"):
        read_feature_cache(tmp_path / "cut.h5")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(BadInputError, match="not a readable HDF5"):
        read_feature_cache(tmp_path / "junk.h5")
    with pytest.raises(BadInputError, match="does not exist"):
        read_feature_cache(tmp_path / "nope.h5")


def _toy_caches(tmp_path, feat_dim=32, per_class=4):
    rng = np.random.default_rng(1)
    centers = rng.normal(size=(13, feat_dim)).astype(np.float32)
    for split in ("train", "val"):
        y = np.repeat(np.arange(13), per_class)
        x = centers[y] + 0.3 * rng.normal(size=(len(y), feat_dim)).astype(np.float32)
        write_feature_cache(tmp_path / f"{split}.h5", x, [f"{split}{i}" for i in range(len(y))], y, CATS)


def test_pretrain_prompt_cli(tmp_path):
    from mesc3d.cli import pretrain_prompt

    _toy_caches(tmp_path)
    cfg = tmp_path / "run.yaml"
    cfg.write_text("preset: small\nprompt: {n_deep: 2, n_ctx_prefix: 2, n_ctx_suffix: 2, epochs: 3, batch_size: 52,"
                   " warmup_epochs: 1, lr: 0.01}\n")
    outs = []
    for run in ("a", "b"):
        args = ["--config", str(cfg), "--train-features", str(tmp_path / "train.h5"), "--val-features",
                str(tmp_path / "val.h5"), "--out", str(tmp_path / run / "prompts.pt"),
                "--retrieval-csv", str(tmp_path / run / "retrieval.csv")]
        assert pretrain_prompt.main(args) == 0
        outs.append(torch.load(tmp_path / run / "prompts.pt", weights_only=True))
    obj = outs[0]
    assert obj["class_names"] == CATS + list(UNSEEN)  # seen then unseen (zero-shot) priors
    assert obj["priors"].shape == (17, 512) and obj["priors"].dtype == torch.float32 and obj["prior_dim"] == 512
    assert "bank.ctx_prefix" in obj["prompt_state"] and not any("tower" in k for k in obj["prompt_state"])
    assert torch.equal(outs[0]["priors"], outs[1]["priors"])  # seeded -> identical
    csv = pd.read_csv(tmp_path / "a" / "retrieval.csv")
    assert list(csv.columns) == ["split", "top1", "chance", "n"] and csv["split"].tolist() == ["train", "val"]
    assert csv["chance"].iloc[1] == pytest.approx(1 / 13) and csv["n"].iloc[1] == 52

    names, priors = load_priors(tmp_path / "a" / "prompts.pt")
    assert names[-4:] == list(UNSEEN)
    table = prior_table(tmp_path / "a" / "prompts.pt", ["desk", "chair"])
    assert torch.equal(table[0], priors[names.index("desk")]) and torch.equal(table[1], priors[names.index("chair")])
    with pytest.raises(BadInputError, match="no prior"):
        prior_table(tmp_path / "a" / "prompts.pt", ["wardrobe"])
    (tmp_path / "bad.pt").write_bytes((tmp_path / "a" / "prompts.pt").read_bytes()[:100])
    with pytest.raises(BadInputError, match="bad.pt"):
        load_priors(tmp_path / "bad.pt")


def test_cache_features_cli(tmp_path):
    from mesc3d.cli import cache_features
    from mesc3d.io import save_npz

    rng = np.random.default_rng(0)
    pts = rng.normal(size=(5, 64, 3)).astype(np.float32)
    save_npz(tmp_path / "train.npz", points=pts, shape_ids=np.array(list("abcde")),
             categories=np.array(["chair", "table", "bed", "chair", "lamp"]))
    cfg = tmp_path / "run.yaml"
    cfg.write_text("preset: small\n")
    out = tmp_path / "f" / "train.h5"
    args = ["--config", str(cfg), "--split-file", str(tmp_path / "train.npz"), "--out", str(out), "--batch-size", "2"]
    assert cache_features.main(args + ["--set", "prompt.feature_dtype=float16"]) == 0
    cache = read_feature_cache(out)
    assert cache.features.shape == (5, 192)  # small preset: 2 * trans_dim 96
    assert cache.class_ids.tolist() == [CATS.index("chair"), CATS.index("table"), -1, CATS.index("chair"),
                                        CATS.index("lamp")]
    assert cache.attrs["encoder"] == "pointmae" and cache.attrs["checkpoint_sha256"] == ""
    import h5py

    with h5py.File(out) as fh:
        assert fh["features"].dtype == np.float16 and fh["features"].compression == "gzip"
    assert cache_features.main(args) == 0  # float32 rerun: deterministic features (seeded random init)
    again = read_feature_cache(out)
    np.testing.assert_allclose(again.features, cache.features, atol=1e-2)
