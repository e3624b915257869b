"""The rehearsal of the real path (issue #11): config/shapenet.yaml and config/pix3d.yaml through Slurm.

Marker ``slurm`` (uses the local single-node Slurm of tests/test_slurm.py's fixture).  The test

1. builds tiny mirrors, in their real layouts, of every archive and weights file the real configs
   name: the R2N2 renderings ``.tgz`` (``ShapeNetRendering/`` wrapper), the point-cloud ``.zip``,
   ``pix3d.zip``, Point-MAE ``modelnet_1k.pth`` (official key layout) and OpenAI's CLIP JIT archive
   (the 2-layer ``mesc3d-TinyCLIP-quickgelu`` architecture), and serves them on 127.0.0.1;
2. runs, from a copy of the repository, for each real config
       snakemake all --profile slurm --profile profiles/slurm-ci --configfile config/<real>.yaml --configfile overlay.yaml
   both at once on the same cluster.  The overlay changes only URLs, checksums and sizes, epochs and
   model/data sizes (preset small, tiny Point-MAE and CLIP, 2-3 classes, 32-px images), and the table
   list (a subset that still runs every rule of the real DAG, so CI stays within its time budget);
3. runs every compute job with NO network: ``mesc3d`` on the jobs' PATH is a wrapper that, inside a
   Slurm job (SLURM_JOB_ID set), first tries to connect to the mirror server from an empty network
   namespace (``unshare -n``) -- the job fails if that connection works -- and then runs the real
   ``mesc3d`` in such a namespace.  Download rules are local rules: they run on the submitting host
   (no SLURM_JOB_ID) and reach the server;
4. asserts that every rule of the planned DAG ran (weights downloads included), that every sbatch job
   ran isolated and COMPLETED, that only the GPU rules asked Slurm for a GPU, and that the tables exist.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from realdata_layouts import LoopbackServer, Route, make_pix3d_tree, make_shapenet_tree, tar_tree, zip_tree
from test_slurm import GPU_RULES, REPO, VENV_BIN, _copy_ignore, _jobcomp_states, _run, local_slurm  # noqa: F401
from weights_layouts import TINY_CLIP, write_openai_clip, write_pointmae

pytestmark = pytest.mark.slurm

TIMEOUT_S = 1200
TINY_POINT_MAE = {"trans_dim": 32, "depth": 1, "heads": 2, "num_group": 8, "group_size": 8, "template_points": 128}

# table lists of the rehearsal: every rule of the real DAG with the fewest trainings
TABLES = {"shapenet": ["table1", "table3", "tab4", "zeroshot", "complexity"],
          "pix3d": ["table2", "zeroshot"]}
OUTPUTS = {"shapenet": ["table1_shapenet", "table3_ablation", "table4_encoder", "zeroshot", "complexity"],
           "pix3d": ["table2_pix3d", "zeroshot"]}

WRAPPER = """#!/usr/bin/env bash
# rehearsal: inside a Slurm job, mesc3d runs in an empty network namespace (and proves it first)
if [[ -n "${SLURM_JOB_ID:-}" ]]; then
  if unshare -n -- "$MESC3D_PY" -c "import socket; socket.create_connection(('127.0.0.1', $MESC3D_PROBE_PORT), timeout=3)" 2>/dev/null; then
    echo "job $SLURM_JOB_ID reached 127.0.0.1:$MESC3D_PROBE_PORT" >> "$MESC3D_NETLOG"; exit 97
  fi
  echo "job $SLURM_JOB_ID isolated" >> "$MESC3D_NETLOG"
  exec unshare -n -- "$MESC3D_REAL" "$@"
fi
exec "$MESC3D_REAL" "$@"
"""


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _mirrors(root: Path, server: LoopbackServer) -> dict[str, tuple[str, str, int]]:
    """Build + serve every file; {name: (url, sha256, size)}."""
    src = root / "src"
    make_shapenet_tree(src / "sn", per_class=10, n_points=600)
    make_pix3d_tree(src / "p3", cats=("chair", "sofa", "table", "bed", "bookcase", "desk", "tool"),
                    per_cat=16)  # BDM split: 12 train (val = last 1/8 of them) / 4 test per class
    files = {
        "pointcloud": zip_tree(src / "sn" / "ShapeNetV1PointCloud", root / "ShapeNetV1PointCloud.zip",
                               "ShapeNetV1PointCloud/"),
        "renderings": tar_tree(src / "sn" / "ShapeNetV1Renderings", root / "ShapeNetRendering.tgz", "ShapeNetRendering"),
        "pix3d": zip_tree(src / "p3", root / "pix3d.zip"),
    }
    from mesc3d.config import PointMAECfg

    write_pointmae(root / "modelnet_1k.pth", PointMAECfg(**TINY_POINT_MAE), "finetune")
    write_pointmae(root / "pretrain.pth", PointMAECfg(**TINY_POINT_MAE), "pretrain")
    write_openai_clip(root / "ViT-B-16.pt", "jit")
    files.update(modelnet_1k=root / "modelnet_1k.pth", pretrain=root / "pretrain.pth", clip=root / "ViT-B-16.pt")
    out = {}
    for name, path in files.items():
        server.add(f"/mirror/{path.name}", Route(path.read_bytes()))
        out[name] = (server.url(f"/mirror/{path.name}"), _sha(path), path.stat().st_size)
    return out


def _src(m, name):
    url, sha, size = m[name]
    return {"url": url, "alternates": [], "sha256": sha, "size": size}


def _overlay(which: str, m: dict) -> dict:
    weights = {"pointmae_modelnet_1k": {"url": m["modelnet_1k"][0], "sha256": m["modelnet_1k"][1],
                                        "size": m["modelnet_1k"][2]},
               "clip_vit_b16_openai": {"url": m["clip"][0], "sha256": m["clip"][1], "size": m["clip"][2]}}
    if which == "shapenet":
        downloads = {"shapenet_pointcloud": _src(m, "pointcloud"), "shapenet_renderings": _src(m, "renderings"),
                     "pix3d": _src(m, "pix3d")}
        weights["pointmae_pretrain"] = {"url": m["pretrain"][0], "sha256": m["pretrain"][1], "size": m["pretrain"][2]}
        data = {"categories": ["airplane", "chair"]}
    else:
        downloads = {"pix3d": _src(m, "pix3d")}
        data = {}
    data.update(n_gt_points=256, image_size=32)
    return {
        "tables": TABLES[which],
        "downloads": downloads,
        "weights": weights,
        "base": {
            "preset": "small",
            "data": data,
            "model": {"n_points": 128, "decoder_widths": [64, 48, 32, 24, 16], "clip_arch": TINY_CLIP,
                      "point_mae": TINY_POINT_MAE},
            "prompt": {"open_clip_arch": TINY_CLIP, "n_deep": 2, "n_ctx_prefix": 2, "n_ctx_suffix": 2,
                       "epochs": 1, "batch_size": 8},
            "train": {"epochs": 1, "batch_size": 8, "warmup_epochs": 0},
            "eval": {"latency_repeats": 1, "n_ply": 1},
        },
    }


def _planned_rules(work: Path, args: list[str], env: dict) -> set[str]:
    res = _run([str(VENV_BIN / "snakemake"), "all", "-n", *args], 300, cwd=work, env=env)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    stats = res.stdout.split("Job stats:")[1].split("total")[0]
    return {ln.split()[0] for ln in stats.splitlines()[3:] if ln.strip()}


@pytest.fixture
def own_tmp():
    """A private tmp dir (pytest's basetemp may be pruned by a concurrent pytest of the same user)."""
    path = Path(tempfile.mkdtemp(prefix="mesc3d-rehearsal-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_real_configs_rehearsal_through_slurm(local_slurm, own_tmp, capsys):  # noqa: F811
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare (util-linux) for the jobs' empty network namespace")
    tmp_path = own_tmp
    netlog = tmp_path / "netlog.txt"
    netlog.touch()
    with LoopbackServer() as server:
        mirrors = _mirrors(tmp_path / "mirror", server)
        port = server.httpd.server_address[1]
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        (bin_dir / "mesc3d").write_text(WRAPPER)
        (bin_dir / "mesc3d").chmod(0o755)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MESC3D_", "SBATCH_", "SLURM_"))}
        env.update(PATH=f"{bin_dir}{os.pathsep}{VENV_BIN}{os.pathsep}{env.get('PATH', '')}", OMP_NUM_THREADS="1",
                   MESC3D_REAL=str(VENV_BIN / "mesc3d"), MESC3D_PY=sys.executable, MESC3D_PROBE_PORT=str(port),
                   MESC3D_NETLOG=str(netlog),
                   MESC3D_ALLOW_CPU="1")  # the local test Slurm advertises fake GPUs on a CPU node
        env.pop("PYTHONPATH", None)
        env["PYTHONPATH"] = ""  # jobs import the copy's mesc3d (cwd), never the caller's tree
        runs = {}
        for which in ("shapenet", "pix3d"):
            work = tmp_path / which
            shutil.copytree(REPO, work, ignore=_copy_ignore, symlinks=True)
            (work / "overlay.yaml").write_text(yaml.safe_dump(_overlay(which, mirrors), sort_keys=False))
            args = ["--configfile", f"config/{which}.yaml", "overlay.yaml"]
            wenv = dict(env, PYTHONPATH=str(work))
            planned = _planned_rules(work, args, wenv)
            cmd = ["timeout", "-k", "20", str(TIMEOUT_S), str(VENV_BIN / "snakemake"), "all",
                   "--profile", "slurm", "--profile", "profiles/slurm-ci", *args]
            log = open(tmp_path / f"{which}.log", "w")
            proc = subprocess.Popen(cmd, cwd=work, env=wenv, stdout=log, stderr=subprocess.STDOUT, text=True)
            runs[which] = dict(work=work, planned=planned, proc=proc, log=log, t0=time.monotonic(), cmd=cmd)
        for which, r in runs.items():
            r["rc"] = r["proc"].wait(TIMEOUT_S + 60)
            r["seconds"] = time.monotonic() - r["t0"]
            r["log"].close()

    for which, r in runs.items():
        out = (tmp_path / f"{which}.log").read_text()
        work = r["work"]
        submitted = re.findall(r"has been submitted with SLURM jobid (\d+) \(log: \S*?/slurm_logs/rule_(\w+?)/", out)
        rule_of = dict(submitted)
        local = set(re.findall(r"^localrule (\w+):", out, re.M))
        ran = set(rule_of.values()) | local
        run_id = (re.findall(r"SLURM run ID: (\S+)", out) or [""])[0]
        with capsys.disabled():
            print(f"\n[rehearsal {which}] {' '.join(r['cmd'][4:])}: {r['seconds']:.0f} s, rc {r['rc']}, "
                  f"{len(submitted)} sbatch jobs, local rules {sorted(local)}")
        if r["rc"] != 0:
            logs = "\n".join(f"--- {p}\n{p.read_text()[-1500:]}" for p in sorted(work.glob("logs/**/*.log")))
            pytest.fail(f"{which}: snakemake exited {r['rc']}\n{out[-5000:]}\n{logs[-5000:]}")
        assert r["planned"] - ran == set(), f"{which}: rules of the DAG that did not run: {r['planned'] - ran}"
        assert {"download", "download_weights"} <= local, f"{which}: downloads must be local rules: {local}"
        assert "pretrain_prompt" in ran and "train" in ran and "cache_features" in ran
        assert not local & {"train", "evaluate", "prepare", "pretrain_prompt", "cache_features"}
        job_ids = [j for j, _ in submitted]
        states = _jobcomp_states(run_id, job_ids)
        assert all(states.get(j) == "COMPLETED" for j in job_ids), states
        gpu_asked = {j: bool(re.search(r"TresPerJob=\S*gres:gpu", _run(["scontrol", "-o", "show", "job", j], 30).stdout))
                     for j in job_ids}
        wrong = {j: rule_of[j] for j in job_ids if gpu_asked[j] != (rule_of[j] in GPU_RULES)}
        assert not wrong, f"GPU request does not match the rule for {wrong}"
        isolated = set(re.findall(r"job (\d+) isolated", netlog.read_text()))
        assert set(job_ids) <= isolated, f"jobs that did not run in an empty network namespace: {set(job_ids) - isolated}"
        for name in OUTPUTS[which]:
            for ext in ("csv", "md", "tex"):
                p = work / "results" / "tables" / f"{name}.{ext}"
                assert p.is_file() and p.stat().st_size > 0, p
        for w in ("modelnet_1k.pth", "clip_vit_b16_openai.pt"):
            assert (work / "resources" / "weights" / w).is_file()
    assert "reached" not in netlog.read_text(), netlog.read_text()
    # the proof that the namespace blocks what the host can do: the same probe outside it connects
    with LoopbackServer() as probe:
        port = probe.httpd.server_address[1]
        code = f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=3)"
        assert _run([sys.executable, "-c", code], 30).returncode == 0
        assert _run(["unshare", "-n", "--", sys.executable, "-c", code], 30).returncode != 0
