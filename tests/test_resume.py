"""Exact resume of all three trainings on the one engine: stage 2 (`train`), stage 1 (`pretrain-prompt`)
and Point-MAE pretraining (`pretrain-pointmae`) are killed at a fixed step (SIGKILL right after a
periodic checkpoint, or SIGTERM), rerun with the same command, and must end with weights bit-identical
to an uninterrupted run; a changed config starts over and says so."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from mesc3d.categories import SEEN
from mesc3d.data.feature_cache import write_feature_cache

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
       "TRANSFORMERS_OFFLINE": "1"}
PERIODIC_EVERY_STEP = ["--set", "train.checkpoint_minutes=0"]  # a periodic checkpoint after every step


def _stage2(tiny_data, base):
    names = ["airplane", "chair", "table", "bed", "bookcase", "desk", "tool"]
    prompts = base / "prompts.pt"
    torch.save({"prompt_state": {}, "config": {}, "class_names": names, "prior_dim": 16,
                "priors": torch.randn(len(names), 16, generator=torch.Generator().manual_seed(0))}, prompts)
    argv = ["train", "--config", str(tiny_data["config"]), "--train", str(tiny_data["train"]), "--val",
            str(tiny_data["val"]), "--prompts", str(prompts)]
    return argv, "model.pt", lambda out: torch.load(out / "model.pt", weights_only=True)["model"], "--out", True


def _stage1(tiny_data, base):
    rng = np.random.default_rng(1)
    centers = rng.normal(size=(13, 32)).astype(np.float32)
    for split in ("train", "val"):
        y = np.repeat(np.arange(13), 4)
        x = centers[y] + 0.3 * rng.normal(size=(len(y), 32)).astype(np.float32)
        write_feature_cache(base / f"{split}.h5", x, [f"{split}{i}" for i in range(len(y))], y, list(SEEN))
    cfg = base / "stage1.yaml"
    cfg.write_text("preset: small\nprompt: {n_deep: 1, n_ctx_prefix: 2, n_ctx_suffix: 2, epochs: 3, batch_size: 13,"
                   " warmup_epochs: 1, lr: 0.01}\n")
    argv = ["pretrain-prompt", "--config", str(cfg), "--train-features", str(base / "train.h5"),
            "--val-features", str(base / "val.h5")]

    def weights(out):
        obj = torch.load(out / "prompts.pt", weights_only=True)
        return {**obj["prompt_state"], "priors": obj["priors"]}

    return argv, "prompts.pt", weights, "--out-file", False


def _pointmae(tiny_data, base):
    from conftest import pointmae_toy_run

    argv = ["pretrain-pointmae", *pointmae_toy_run(base, epochs=3)]
    return argv, "pointmae.pt", lambda out: torch.load(out / "pointmae.pt", weights_only=True)["base_model"], \
        "--out-file", False


KINDS = {"stage2": (_stage2, 3), "stage1": (_stage1, 6), "pointmae": (_pointmae, 3)}  # kill step (mid-epoch)


METRIC_COLS = ["epoch", "step", "split", "loss", "cd_l1_x100", "cd_l2_x1000", "lr"]  # stage 2 metrics.csv


def _run(argv, out_flag, out, name, env=None, cfg_sets=()):
    target = ["--out", str(out)] if out_flag == "--out" else ["--out", str(out / name)]
    cmd = [sys.executable, "-m", "mesc3d", *argv, *target, *PERIODIC_EVERY_STEP, *cfg_sets]
    return subprocess.run(cmd, env={**ENV, **(env or {})}, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def setups(tiny_data, tmp_path_factory):
    return {kind: make(tiny_data, tmp_path_factory.mktemp(kind)) for kind, (make, _) in KINDS.items()}


@pytest.fixture(scope="module")
def straight(setups, tmp_path_factory):
    cache = {}

    def get(kind):
        if kind not in cache:
            argv, name, weights, flag, _ = setups[kind]
            out = tmp_path_factory.mktemp(f"{kind}_straight")
            res = _run(argv, flag, out, name)
            assert res.returncode == 0, res.stderr[-3000:]
            cache[kind] = out
        return cache[kind]

    return get


# the fast tier (-m "not slow") keeps one of each test; the full suite runs every training and signal
FAST = {("pointmae", "TERM"), ("pointmae", "config")}


def _cases(kinds, what):
    return [pytest.param(k, w, marks=() if (k, w) in FAST else pytest.mark.slow) for k in kinds for w in what]


@pytest.mark.parametrize("kind,sig", _cases(KINDS, ["KILL", "TERM"]))
def test_killed_training_resumes_bit_identical(kind, sig, setups, straight, tmp_path):
    argv, name, weights, flag, _ = setups[kind]
    step = KINDS[kind][1]
    out = tmp_path / "run"
    res = _run(argv, flag, out, name, env={"MESC3D_SIGNAL_AT_STEP": f"{step}:{sig}"})
    want = -signal.SIGKILL if sig == "KILL" else 128 + signal.SIGTERM
    assert res.returncode == want, res.stderr[-3000:]
    if sig == "TERM":
        assert "interrupted at step" in res.stderr
    assert not (out / name).exists()  # no declared output from an interrupted run
    assert not (out / "metrics.csv").exists()
    ckpts = list((out / "ckpt").glob("*.pt"))
    assert len(ckpts) == 1
    saved = torch.load(ckpts[0], weights_only=True)["global_step"]
    assert saved == (step - 1 if sig == "KILL" else step)  # KILL: the work of step `step` is lost
    res = _run(argv, flag, out, name)  # the same command continues
    assert res.returncode == 0, res.stderr[-3000:]
    assert "resumed from" in res.stderr
    a, b = weights(straight(kind)), weights(out)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    if kind == "stage2":  # the metrics rows too (timings aside)
        pd.testing.assert_frame_equal(pd.read_csv(straight(kind) / "metrics.csv")[METRIC_COLS],
                                      pd.read_csv(out / "metrics.csv")[METRIC_COLS])


@pytest.mark.parametrize("kind,_what", _cases(["stage2", "pointmae"], ["config"]))
def test_changed_config_starts_over_and_says_so(kind, _what, setups, tmp_path):
    argv, name, weights, flag, _ = setups[kind]
    out = tmp_path / "run"
    assert _run(argv, flag, out, name, env={"MESC3D_SIGNAL_AT_STEP": "2:TERM"}).returncode == 128 + signal.SIGTERM
    res = _run(argv, flag, out, name, cfg_sets=["--set", "seed=11"])
    assert res.returncode == 0, res.stderr[-3000:]
    assert "different config" in res.stderr and "starts from scratch" in res.stderr
    assert list((out / "ckpt").glob("stale-*.pt")) and (out / name).is_file()
