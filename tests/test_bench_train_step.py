"""bench/train_step.py: one step measured in this tree and, side by side, in a second checkout
(here: the same tree again), with the per-phase breakdown and the ratio line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TINY = ["data.categories=[airplane,chair]", "data.n_gt_points=128", "data.image_size=32", "model.n_points=64",
        "model.decoder_widths=[16,8]", "model.point_mae.trans_dim=32", "model.point_mae.depth=1",
        "model.point_mae.heads=2", "model.point_mae.num_group=4", "model.point_mae.group_size=8",
        "model.point_mae.template_points=64"]


def test_side_by_side_ratio(tmp_path):
    cmd = [sys.executable, str(REPO / "bench" / "train_step.py"), "--batch-size", "2", "--steps", "1", "--warmup", "1",
           "--against", str(REPO), "--rounds", "2", "--json", str(tmp_path / "r.json")]
    for s in TINY:
        cmd += ["--set", s]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "ratio this/against:" in res.stdout and "load average" in res.stdout
    out = json.loads((tmp_path / "r.json").read_text())
    assert len(out["runs"]["this"]) == len(out["runs"]["against"]) == 2 and out["ratio"] > 0
    run = out["runs"]["this"][0]
    assert set(run["phases_s"]) == {"data", "forward", "loss", "backward", "optimiser", "other"}
    assert run["phases_s"]["forward"] > 0 and run["phases_s"]["backward"] > 0 and run["phases_s"]["optimiser"] > 0
