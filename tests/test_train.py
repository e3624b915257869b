"""Stage-2 training: DDP on CPU (gloo), batches independent of the worker count, deterministic
evaluation.  Exact resume, SIGTERM/SIGKILL safety and config-change restarts of all three trainings
(this one included): tests/test_resume.py."""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest
import torch

from mesc3d.cli.evaluate import main as evaluate_main
from mesc3d.cli.train import main as train_main
from mesc3d.engine.checkpoint import load_checkpoint


@pytest.fixture(scope="module")
def prompts(tiny_data):
    """A stand-in stage-1 output with the contract's keys (stage 1 itself is tested elsewhere)."""
    names = ["airplane", "chair", "table", "bed", "bookcase", "desk", "tool"]
    g = torch.Generator().manual_seed(0)
    path = tiny_data["base"] / "prompts.pt"
    torch.save({"prompt_state": {}, "config": {}, "class_names": names,
                "priors": torch.randn(len(names), 16, generator=g), "prior_dim": 16}, path)
    return path


def _args(tiny_data, prompts, out, *extra):
    return ["--config", str(tiny_data["config"]), "--train", str(tiny_data["train"]), "--val",
            str(tiny_data["val"]), "--prompts", str(prompts), "--out", str(out), *extra]


def _weights(path):
    return load_checkpoint(path)["model"]


@pytest.mark.slow
def test_ddp_two_processes_on_cpu(tiny_data, prompts, tmp_path):
    out = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "mesc3d", "train", *_args(tiny_data, prompts, out, "--set", "train.epochs=1")]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    state = load_checkpoint(out / "model.pt")
    assert state["global_step"] >= 1
    metrics = pd.read_csv(out / "metrics.csv")
    assert set(metrics["split"]) == {"train", "val"}


def test_evaluation_is_deterministic(tiny_data, prompts, tmp_path):
    run = tmp_path / "run"
    assert train_main(_args(tiny_data, prompts, run, "--set", "train.epochs=1")) == 0
    outs = []
    for name in ("a", "b"):
        out = tmp_path / name
        assert evaluate_main(["--config", str(tiny_data["config"]), "--model", str(run / "model.pt"),
                              "--prompts", str(prompts), "--split", str(tiny_data["test"]),
                              "--out", str(out)]) == 0
        outs.append(out)
    for name in ("per_category.csv", "per_shape.csv"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes()
    per_cat = pd.read_csv(outs[0] / "per_category.csv")
    assert list(per_cat["category"]) == ["airplane", "chair", "table", "mean"]
    assert {"cd_l1_x100", "cd_l2_x1000", "fscore", "fscore_euclid"} <= set(per_cat.columns)
    means = per_cat[per_cat["category"] != "mean"]["cd_l2_x1000"].mean()
    assert per_cat.iloc[-1]["cd_l2_x1000"] == pytest.approx(means, rel=1e-4)  # unweighted over classes
    assert (outs[0] / "samples.png").is_file() and list((outs[0] / "samples").glob("*.ply"))


def test_batches_do_not_depend_on_the_worker_count(tiny_data):
    """Item randomness is a pure function of (seed, epoch, index): 0 and 2 DataLoader workers give
    bit-identical training batches (so train.num_workers never changes a result)."""
    from mesc3d.config import load_config
    from mesc3d.data.dataset import ReconDataset
    from mesc3d.engine.runtime import epoch_order, loader_batches

    cfg = load_config(tiny_data["config"])
    ds = ReconDataset(tiny_data["train"], cfg.data, list(cfg.data.categories), train=True)
    order = epoch_order(len(ds), 5, 1)[:8]
    runs = [list(loader_batches(ds, order, 4, seed=5, epoch=1, num_workers=w)) for w in (0, 2)]
    assert len(runs[0]) == len(runs[1]) == 2
    for a, b in zip(*runs):
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["points"], b["points"])
        assert torch.equal(a["index"], b["index"])


@pytest.mark.slow
def test_baseline_and_zeroshot_clis_run_on_the_stage_runner(tiny_data, prompts, tmp_path):
    """The evaluation CLIs that only the smoke DAG reaches otherwise: both baselines and zeroshot."""
    import yaml

    from mesc3d.cli.baseline import main as baseline_main
    from mesc3d.cli.zeroshot import main as zeroshot_main

    for kind in ("class_mean", "retrieval"):
        assert baseline_main(["--kind", kind, "--config", str(tiny_data["config"]), "--train", str(tiny_data["train"]),
                              "--split", str(tiny_data["test"]), "--views", "1", "--out", str(tmp_path / kind)]) == 0
    without = tmp_path / "without.yaml"
    run = yaml.safe_load(tiny_data["config"].read_text())
    without.write_text(yaml.safe_dump({**run, "model": {**run["model"], "prior_injection": "none"}}))
    one_epoch = ["--train", str(tiny_data["train"]), "--val", str(tiny_data["val"]), "--set", "train.epochs=1"]
    assert train_main(_args(tiny_data, prompts, tmp_path / "with", "--set", "train.epochs=1")) == 0
    assert train_main(["--config", str(without), "--out", str(tmp_path / "without"), *one_epoch]) == 0
    assert zeroshot_main(["--config", str(tiny_data["config"]), "--model", str(tmp_path / "with" / "model.pt"),
                          "--prompts", str(prompts), "--config-without", str(without),
                          "--model-without", str(tmp_path / "without" / "model.pt"), "--split",
                          str(tiny_data["zeroshot"]), "--out", str(tmp_path / "zs"), "--set", "train.epochs=1"]) == 0
    per_cat = pd.read_csv(tmp_path / "zs" / "per_category.csv")
    assert set(per_cat["prior"]) == {"with", "without"}
