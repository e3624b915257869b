"""Real Slurm integration test (marker ``slurm``; issue #7 item 5).

Starts a single-node Slurm on localhost (Debian's slurmctld + slurmd + munge, started directly by
``ci/slurm/start_local_slurm.sh``, every PID recorded, stopped by ``ci/slurm/stop_local_slurm.sh``
in the fixture finaliser), advertising one fake GPU (``SLURM_FAKE_GPUS=1``) so that ``gpu=1`` rules
are schedulable on this CPU node. Then it runs a workflow through the production profile plus the
CI overlay, from a copy in a tmp dir (nothing lands in the repository's results/):

    timeout -k 20 <TIMEOUT_S> snakemake all --profile slurm --profile profiles/slurm-ci [--configfile config/smoke.yaml]

and asserts that every job went through ``sbatch`` (job ids printed by the plugin), that Slurm
finished them (``JobState=COMPLETED`` in the jobcomp file, for the run's job name = ``SLURM run ID``),
that a GPU job really requested a GPU from Slurm, and that the tables exist. The job ids are printed
to the terminal even without ``-s``.

Skipped (with the reason) when not root, or when the Slurm packages are missing and cannot be
installed (start script exit code 3: no apt-get / apt-get failed).

WORKFLOW selects what runs: "toy" (default) = a 4-job workflow generated in the tmp dir
(prep x2 -> train with gpu=1 -> tables, ~70 s): the Slurm plumbing alone (fake GPU seen by the job);
"real" = the repository's Snakefile with config/smoke.yaml (~21 Slurm jobs, ~7 min on 2 busy cores).
The real DAG through Slurm is tests/test_rehearsal.py (config/shapenet.yaml and config/pix3d.yaml,
jobs without network), so CI runs "toy" here; ``MESC3D_SLURM_TEST_WORKFLOW=real`` runs the smoke DAG.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slurm

WORKFLOW = os.environ.get("MESC3D_SLURM_TEST_WORKFLOW", "toy")  # "toy" | "real"

GPU_RULES = {"pretrain_pointmae", "pretrain_prompt", "train"}  # rules that request `gpu`
REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
STATE = Path(os.environ.get("SLURM_LOCAL_STATE", "/tmp/local-slurm"))
START = REPO / "ci" / "slurm" / "start_local_slurm.sh"
STOP = REPO / "ci" / "slurm" / "stop_local_slurm.sh"
TIMEOUT_S = 900  # hard cap of the snakemake run (CI budget is 90 min; the smoke run takes minutes)

# what each variant runs: extra snakemake args, files that must exist afterwards (globs),
# minimal number of Slurm jobs
VARIANTS = {
    "toy": dict(args=[], outputs=["results/tables/summary.csv"], min_jobs=4),
    "real": dict(args=["--configfile", "config/smoke.yaml"], min_jobs=10,
                 outputs=["results/tables/table1_shapenet.csv", "results/tables/table3_ablation.csv",
                          "results/tables/zeroshot.csv", "results/tables/*.md"]),
}

TOY_SNAKEFILE = '''\
# throwaway workflow of tests/test_slurm.py: same rule name (`train`) and resource style as the real
# GPU rules, so profiles/slurm-ci's set-resources apply
rule all:
    input: "results/tables/summary.csv"

rule prep:
    output: "results/prep/{i}.txt"
    log: "logs/prep/{i}.log"
    threads: 4
    shell: "echo prep {wildcards.i} threads={threads} job=${{SLURM_JOB_ID:-none}} > {output} 2> {log}"

rule train:
    input: expand("results/prep/{i}.txt", i=[1, 2])
    output: "results/train/model.txt"
    log: "logs/train.log"
    threads: 2
    resources: gpu=config.get("gpus_per_job", 1), runtime=600, mem_mb=64000
    shell: "echo cuda=${{CUDA_VISIBLE_DEVICES:-unset}} job=${{SLURM_JOB_ID:-none}} > {output} 2> {log}"

rule tables:
    input: "results/train/model.txt"
    output: "results/tables/summary.csv"
    log: "logs/tables.log"
    shell: "(echo exp,value; echo toy,1) > {output} 2> {log}"
'''

# top-level entries of the repository that the copy leaves out (generated data, caches, envs)
_TOP_IGNORE = {".git", ".snakemake", ".pytest_cache", "results", "data", "resources", "logs", "benchmarks",
               "build", "report.html", "report.zip"}


def _copy_ignore(directory: str, names: list[str]) -> set[str]:
    top = Path(directory) == REPO
    return {n for n in names
            if n in {"__pycache__", ".pytest_cache"} or n.endswith(".egg-info")
            or (top and (n in _TOP_IGNORE or n.startswith(".venv") or n.endswith(".whl")))}


def _run(cmd, timeout, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def _recorded_ctld_alive() -> bool:
    pid_file = STATE / "pids" / "slurmctld.pid"
    try:
        os.kill(int(pid_file.read_text().strip()), 0)
        return True
    except (OSError, ValueError):
        return False


@pytest.fixture(scope="module")
def local_slurm():
    """A running single-node Slurm with 1 fake GPU; stopped afterwards if this fixture started it."""
    if not sys.platform.startswith("linux"):
        pytest.skip("needs Linux (Debian's slurm packages)")
    if os.geteuid() != 0:
        pytest.skip("needs root: installs slurmctld/slurmd/munge with apt-get and starts the daemons")
    if _recorded_ctld_alive():  # started by someone else (e.g. CI's .ci/run): use it, leave it running
        gres = _run(["sinfo", "-h", "-o", "%G"], 30).stdout
        if "gpu" not in gres:
            pytest.fail(f"a local Slurm is already running without fake GPUs (sinfo %G: {gres.strip()!r}); "
                        f"restart it with SLURM_FAKE_GPUS=1 bash {START}")
        yield {"started": False, "seconds": 0.0}
        return
    env = dict(os.environ, SLURM_FAKE_GPUS="1", SLURM_LOCAL_STATE=str(STATE))
    t0 = time.monotonic()
    try:
        res = _run(["timeout", "-k", "10", "300", "bash", str(START)], 330, env=env)
    except BaseException:
        _run(["bash", str(STOP)], 120, env=env)
        raise
    seconds = time.monotonic() - t0
    if res.returncode == 3:
        _run(["bash", str(STOP)], 120, env=env)
        pytest.skip("slurm packages cannot be installed here: " + (res.stderr.strip().splitlines() or ["?"])[-1])
    try:
        if res.returncode != 0:
            pytest.fail(f"start_local_slurm.sh failed (rc {res.returncode}):\n{res.stdout}\n{res.stderr}")
        yield {"started": True, "seconds": seconds, "log": res.stdout}
    finally:
        stop = _run(["bash", str(STOP)], 120, env=env)
        assert not _recorded_ctld_alive(), f"slurmctld still running after stop:\n{stop.stdout}{stop.stderr}"


def _prepare_workdir(tmp_path: Path) -> Path:
    work = tmp_path / "wf"
    if WORKFLOW == "real":
        shutil.copytree(REPO, work, ignore=_copy_ignore, symlinks=True)
    else:
        work.mkdir()
        (work / "Snakefile").write_text(TOY_SNAKEFILE)
        shutil.copytree(REPO / "profiles", work / "profiles")
        (work / "slurm").symlink_to("profiles/slurm")  # same root symlink as the repository
    assert (work / "slurm" / "config.yaml").is_file(), "root symlink slurm -> profiles/slurm missing"
    return work


def _jobcomp_states(run_id: str, job_ids: list[str], tries: int = 20) -> dict[str, str]:
    """{slurm job id: JobState} of the run's jobs from the jobcomp/filetxt log (waits until all are in)."""
    path = STATE / "log" / "jobcomp.txt"
    states: dict[str, str] = {}
    for _ in range(tries):
        text = path.read_text() if path.exists() else ""
        states = {
            m.group(1): m.group(2)
            for m in re.finditer(rf"JobId=(\d+) \S+ \S+ Name={re.escape(run_id)} JobState=(\S+)", text)
        }
        if set(job_ids) <= set(states):
            break
        time.sleep(0.5)
    return states


def test_workflow_runs_through_slurm(local_slurm, tmp_path, capsys):
    variant = VARIANTS[WORKFLOW]
    work = _prepare_workdir(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MESC3D_SLURM_", "SBATCH_"))}
    env.update(PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}", OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1",
               MESC3D_ALLOW_CPU="1")  # the local test Slurm advertises fake GPUs on a CPU node
    # target first: --configfile takes several values and would swallow a target after it
    cmd = ["timeout", "-k", "20", str(TIMEOUT_S), str(VENV_BIN / "snakemake"), "all",
           "--profile", "slurm", "--profile", "profiles/slurm-ci", *variant["args"]]
    t0 = time.monotonic()
    res = _run(cmd, TIMEOUT_S + 60, cwd=work, env=env)
    seconds = time.monotonic() - t0
    out = res.stdout + res.stderr
    (tmp_path / "snakemake.log").write_text(out)

    submitted = re.findall(r"has been submitted with SLURM jobid (\d+) \(log: \S*?/slurm_logs/rule_(\w+?)/", out)
    job_ids = [j for j, _ in submitted]
    rule_of = dict(submitted)
    run_id = (re.findall(r"SLURM run ID: (\S+)", out) or [""])[0]
    with capsys.disabled():  # visible in CI even without -s
        print(f"\n[slurm test] workflow={WORKFLOW} cmd: {' '.join(cmd[4:])} (cwd {work})")
        print(f"[slurm test] cluster start {local_slurm['seconds']:.0f} s, snakemake {seconds:.0f} s, rc {res.returncode}")
        print(f"[slurm test] SLURM run ID {run_id}; sbatch job ids: {' '.join(job_ids)}")
        for rule in sorted(set(rule_of.values())):
            print(f"[slurm test]   {rule}: {' '.join(j for j, r in submitted if r == rule)}")
    if res.returncode != 0:
        logs = "\n".join(f"--- {p}\n{p.read_text()[-1500:]}" for p in sorted(work.glob(".snakemake/slurm_logs/**/*.log")))
        pytest.fail(f"snakemake exited {res.returncode} (124/137 = timeout)\n{out[-6000:]}\n{logs[-6000:]}")

    assert run_id, "no 'SLURM run ID' line: the slurm executor was not used"
    assert len(job_ids) >= variant["min_jobs"], f"expected >= {variant['min_jobs']} sbatch jobs, got {job_ids}"
    states = _jobcomp_states(run_id, job_ids)
    with capsys.disabled():
        print(f"[slurm test] Slurm jobcomp: {sum(v == 'COMPLETED' for v in states.values())}/{len(job_ids)} COMPLETED")
    assert set(job_ids) <= set(states), f"submitted {job_ids} but Slurm recorded only {sorted(states)}"
    assert all(states[j] == "COMPLETED" for j in job_ids), states

    # the GPU rules (and only they) asked Slurm for a GPU: scontrol still knows finished jobs (MinJobAge=600)
    gpu_asked = {j: bool(re.search(r"TresPerJob=\S*gres:gpu", _run(["scontrol", "-o", "show", "job", j], 30).stdout))
                 for j in job_ids}
    assert any(rule_of[j] in GPU_RULES for j in job_ids), f"no GPU rule ran through Slurm: {rule_of}"
    wrong = {j: rule_of[j] for j in job_ids if gpu_asked[j] != (rule_of[j] in GPU_RULES)}
    assert not wrong, f"GPU request (TresPerJob gres:gpu) does not match the rule for {wrong}"

    for pattern in variant["outputs"]:
        found = sorted(work.glob(pattern))
        assert found and all(p.stat().st_size > 0 for p in found), f"missing or empty outputs {pattern}"
    if WORKFLOW == "toy":
        assert (work / "results/train/model.txt").read_text().startswith("cuda=0 job="), "GPU job saw no fake GPU"
    assert REPO not in work.parents, "the run must not write into the repository"
