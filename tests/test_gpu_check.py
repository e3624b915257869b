"""bench/gpu_check.py: skips in one line without a GPU; its kernel part runs on the CPU under
TRITON_INTERPRET=1 (the CUDA extension, AMP, NCCL and throughput parts need the GPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "bench" / "gpu_check.py"


@pytest.mark.skipif(torch.cuda.is_available(), reason="the skip path is for machines without a GPU")
def test_skips_cleanly_without_gpu():
    res = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert res.returncode == 0 and len(res.stdout.strip().splitlines()) == 1 and "skipped" in res.stdout


def test_triton_part_under_interpreter(tmp_path):
    env = dict(os.environ, TRITON_INTERPRET="1", OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    res = subprocess.run([sys.executable, str(SCRIPT), "--allow-cpu", "--only", "kernels", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert report["checks"]["kernels"]["ok"] and "kernels_triton_seconds" in report
    assert "| kernels | yes |" in (tmp_path / "gpu_check.md").read_text()


@pytest.mark.slow
def test_resume_and_variant_runner_on_cpu(tmp_path):
    """The exact-resume check in the loop's mixed precision (bf16 autocast on the CPU) and the
    precision x compile variant runner (eager rows; compiled is the GPU's) run on the CPU."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    res = subprocess.run([sys.executable, str(SCRIPT), "--allow-cpu", "--only", "train", "variants", "--preset", "small",
                          "--batch-size", "2", "--steps", "1", "--variants", "fp32:eager,bf16:eager", "--out",
                          str(tmp_path)], capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert report["train_resume_precision"] == "bf16" and report["checks"]["train"]["ok"]
    assert [r["variant"] for r in report["variants"]] == ["fp32:eager", "bf16:eager"]
    assert all(r["images_per_s"] > 0 for r in report["variants"])
    assert "| bf16 | eager |" in (tmp_path / "gpu_check.md").read_text()


def test_variant_list_is_checked():
    res = subprocess.run([sys.executable, str(SCRIPT), "--allow-cpu", "--only", "variants", "--variants", "fp8:eager"],
                         capture_output=True, text=True, timeout=120, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert res.returncode == 2 and "--variants" in res.stderr and "fp8:eager" in res.stderr
