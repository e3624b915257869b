"""Shared fixtures: a tiny procedural dataset (prepared once per session) and a tiny run config."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]

# Subprocesses (snakemake rules, torchrun) must find the `mesc3d` console script of this venv,
# and nothing may try the network.
os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# Keep the tests off the Slurm controller wait: once slurm-client is installed (tests/test_slurm.py
# installs it) and no controller answers, Snakemake's Slurm executor plugin runs `scontrol show config`
# when Snakemake starts and waits ~9 s for it, in every snakemake call.  This stand-in, first on PATH
# for the whole session, gives that one query 2 s (a local controller answers at once; an unreachable
# one fails, and the plugin uses its defaults) and passes every other call to the real scontrol.  The
# real answer matters to the Slurm tests, also in module-scoped fixtures that run before the
# function-scoped MESC3D_TEST_SLURM_UP below: without MinJobAge the plugin falls back to sacct, which
# the local cluster (no accounting) cannot answer, and the rehearsal waits forever.
_FAKE_BIN = Path(tempfile.mkdtemp(prefix="mesc3d-test-bin-"))
atexit.register(shutil.rmtree, _FAKE_BIN, True)
(_FAKE_BIN / "scontrol").write_text(f"""#!/bin/sh
PATH=$(printf %s "$PATH" | tr : '\\n' | grep -vxF '{_FAKE_BIN}' | paste -sd: -)
if [ "$1" = show ] && [ "$2" = config ] && [ -z "$MESC3D_TEST_SLURM_UP" ]; then
    # a local controller (the Slurm tests' cluster) answers in well under a second; an unreachable
    # one makes scontrol wait ~9 s: give up after 2 s as an unreachable controller does
    command -v scontrol >/dev/null || {{ echo "slurm_load_ctl_conf error: no controller" >&2; exit 1; }}
    exec timeout 2 scontrol "$@"
fi
exec scontrol "$@"
""")
(_FAKE_BIN / "scontrol").chmod(0o755)
os.environ["PATH"] = str(_FAKE_BIN) + os.pathsep + os.environ["PATH"]


def pytest_collection_modifyitems(config, items):
    """Tests that start a local Slurm cluster are slow too: the fast tier (`-m "not slow"`) leaves them out."""
    for item in items:
        if item.get_closest_marker("slurm") and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _slurm_controller_queries(request, monkeypatch):
    """Tests marked `slurm` run a local controller: their `scontrol show config` is the real one."""
    if request.node.get_closest_marker("slurm"):
        monkeypatch.setenv("MESC3D_TEST_SLURM_UP", "1")

TINY_RUN = {
    "preset": "small",
    "seed": 0,
    "data": {"source": "synthetic", "categories": ["airplane", "chair", "table"], "n_gt_points": 256,
             "image_size": 32},
    "model": {"n_points": 96, "decoder_widths": [48, 40, 32, 24, 16],
              "point_mae": {"trans_dim": 32, "depth": 1, "heads": 2, "num_group": 8, "group_size": 8,
                            "template_points": 96}},
    "prompt": {"text_backend": "minilm", "n_deep": 2, "n_ctx_prefix": 2, "n_ctx_suffix": 2, "epochs": 2,
               "batch_size": 8},
    "train": {"epochs": 2, "batch_size": 4, "warmup_epochs": 0, "checkpoint_minutes": 10.0},
    "eval": {"batch_size": 4, "n_ply": 1},
}


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> dict:
    """Synthetic benchmark (3 seen classes x 10, 4 unseen x 2) prepared into split files."""
    from mesc3d.cli.prepare import main as prepare_main
    from mesc3d.cli.synth import main as synth_main

    base = tmp_path_factory.mktemp("tiny")
    root, prepared = base / "synthetic", base / "prepared"
    assert synth_main(["--out", str(root), "--per-class", "10", "--unseen-per-class", "2",
                       "--dense-points", "600", "--seed", "0", "--categories", "airplane", "chair", "table"]) == 0
    run = dict(TINY_RUN, data=dict(TINY_RUN["data"], root=str(root), prepared=str(prepared)))
    cfg_path = base / "run.yaml"
    cfg_path.write_text(yaml.safe_dump(run))
    assert prepare_main(["--config", str(cfg_path), "--out", str(prepared)]) == 0
    return {"root": root, "prepared": prepared, "config": cfg_path, "base": base,
            "train": prepared / "train.npz", "val": prepared / "val.npz", "test": prepared / "test.npz",
            "zeroshot": prepared / "zeroshot.npz"}


@pytest.fixture(scope="module")
def one_thread():
    """Small matmuls on 2 shared cores: one thread is much faster than oversubscribed OpenMP."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="session")
def tower():
    """The open_clip ViT-B-16 text tower alone, random frozen init (offline)."""
    from mesc3d.models.text_towers import build_tower

    return build_tower("open_clip", "ViT-B-16", "")


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """A copy of the working tree (tracked + untracked, not ignored) with the smoke DAG run to completion,
    once per session (tests/test_workflow.py and tests/test_invalidation.py share it).  The DAG and the
    jobs use the copy's package (PYTHONPATH), and every stage records its config reads under reads/."""
    import subprocess

    dst = copy_worktree(tmp_path_factory.mktemp("smoke"))
    # tests/record_reads/sitecustomize.py installs the recorder in every job (the package never does)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(dst / "tests" / "record_reads"), str(dst)]),
           "MESC3D_RECORD_CONFIG_READS": str(dst / "reads")}
    res = subprocess.run([sys.executable, "-m", "snakemake", "--configfile", "config/smoke.yaml", "--cores", "2"],
                         cwd=dst, env=env, capture_output=True, text=True, timeout=2400)
    if res.returncode != 0:
        raise AssertionError(f"smoke run failed:\n{res.stdout[-4000:]}\n{res.stderr[-4000:]}")
    return dst, res


def pointmae_toy_run(base, epochs: int = 2) -> list[str]:
    """Six unit-sphere clouds + a tiny Point-MAE config in ``base`` -> pretrain-pointmae args (no --out)."""
    import numpy as np

    from mesc3d.io import save_npz

    pts = np.random.default_rng(0).normal(size=(6, 96, 3)).astype(np.float32)
    pts /= np.linalg.norm(pts, axis=-1, keepdims=True)
    save_npz(base / "train.npz", points=pts)
    (base / "run.yaml").write_text("preset: small\nseed: 3\n")
    sets = ["model.point_mae.trans_dim=32", "model.point_mae.depth=1", "model.point_mae.heads=2",
            "model.point_mae.num_group=8", "model.point_mae.group_size=8", "model.point_mae.decoder_depth=1",
            "model.point_mae.decoder_heads=2", f"train.pointmae_epochs={epochs}", "train.batch_size=3",
            "train.device=cpu"]
    return ["--config", str(base / "run.yaml"), "--train", str(base / "train.npz")] + [
        a for s in sets for a in ("--set", s)]


# ---------------------------------------------------------------- shared by the workflow-level tests
def copy_worktree(dst: Path) -> Path:
    """Copy the working tree (tracked + untracked, not ignored) to ``dst``: a DAG runs there untouched."""
    import subprocess

    files = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.split("\0")
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file() and not src.is_symlink():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)
    return dst


SMOKE = ("--configfile", "config/smoke.yaml")


def smk(dst: Path, *args: str, timeout: int = 600):
    """``snakemake --configfile config/smoke.yaml ARGS`` in the copy ``dst`` (its package on PYTHONPATH)."""
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "MESC3D_RECORD_CONFIG_READS"}
    env["PYTHONPATH"] = str(dst)  # the copy's package builds the DAG and runs the jobs
    res = subprocess.run([sys.executable, "-m", "snakemake", *SMOKE, *args], cwd=dst, env=env,
                         capture_output=True, text=True, timeout=timeout)
    if res.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    return res


def planned(dst: Path, *args: str) -> dict[str, set[str]]:
    """rule -> set of wildcard values ("" for none; "a/b" for two) of every job ``snakemake -n ARGS`` plans."""
    import re
    from collections import defaultdict

    out = smk(dst, "-n", *args).stdout
    jobs: dict[str, set[str]] = defaultdict(set)
    rule = None
    for line in out.splitlines() + ["["]:
        line = line.strip()
        m = re.match(r"^(?:local)?rule (\w+):$", line)
        if m or line.startswith("[") or line.startswith("Job stats"):
            if rule is not None:
                jobs[rule].add("")
            rule = m.group(1) if m else None
            continue
        if line.startswith("wildcards: ") and rule is not None:  # "stage=train, exp=mesc3d" -> "train/mesc3d"
            jobs[rule].add("/".join(kv.split("=", 1)[1] for kv in line[len("wildcards: "):].split(", ")))
            rule = None
    return dict(jobs)
