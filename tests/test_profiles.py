"""The Snakemake profiles parse and resolve as documented (issue #7 item 3), without a cluster.

- ``snakemake --profile slurm`` run from the repository root finds ``profiles/slurm`` through the root
  symlink ``slurm -> profiles/slurm`` (Snakemake looks up a profile NAME in the cwd first).
- partition/account come from MESC3D_SLURM_* (falling back to SBATCH_*); unset means the key is
  left out (never a literal ``$VAR``).
- ``--profile slurm --profile profiles/slurm-ci`` overlays the test-cluster settings.
- ``profiles/local`` parses.
Most tests parse the profiles in-process exactly as Snakemake's CLI does (get_profile_dir +
ProfileConfigFileParser); one dry-runs a throwaway workflow (rule names of the real GPU rules)
through the CLI from the root, and the last dry-runs the real workflow with the literal command.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")

TOY = '''\
rule all:
    input: "results/tables/t.csv"

rule prep:
    output: "results/prep.txt"
    threads: 4
    shell: "touch {output}"

rule train:
    input: "results/prep.txt"
    output: "results/model.txt"
    threads: 2
    resources: gpu=config.get("gpus_per_job", 1), runtime=2880, mem_mb=32000
    shell: "touch {output}"

rule tables:
    input: "results/model.txt"
    output: "results/tables/t.csv"
    shell: "touch {output}"
'''


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MESC3D_SLURM_", "SBATCH_", "SNAKEMAKE_PROFILE"))}
    env.update(extra)
    return env


def _profile(name: str, monkeypatch, **env: str) -> dict:
    """What Snakemake hands to its CLI parser for `--profile name` run from the repository root."""
    from snakemake.cli import get_profile_dir
    from snakemake.profiles import ProfileConfigFileParser

    for key in list(os.environ):
        if key.startswith(("MESC3D_SLURM_", "SBATCH_")):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(REPO)
    found = get_profile_dir(name)
    assert found is not None, f"snakemake does not find profile {name!r} from {REPO}"
    with open(found[1]) as stream:
        return dict(ProfileConfigFileParser().parse(stream))


def _kv(items: list[str]) -> dict[str, str]:
    return dict(item.split("=", 1) for item in items)


def test_root_symlink_points_at_profile(monkeypatch):
    link = REPO / "slurm"
    assert link.is_symlink() and os.readlink(link) == "profiles/slurm"
    from snakemake.cli import get_profile_dir

    monkeypatch.chdir(REPO)
    profile_dir, config = get_profile_dir("slurm")
    assert (profile_dir / config.name).resolve() == (REPO / "profiles/slurm/config.yaml").resolve()


INFERENCE_RULES = ("evaluate", "cache_features", "zeroshot_eval", "complexity_run")


def test_slurm_profile_without_environment(monkeypatch):
    prof = _profile("slurm", monkeypatch)
    assert prof["executor"] == "slurm" and int(prof["retries"]) >= 2 and prof["slurm-requeue"] == "True"
    assert prof["slurm-keep-successful-logs"] == "True" and prof["rerun-incomplete"] == "True"
    assert _kv(prof["default-resources"]) == {"runtime": "60", "mem_mb": "4000"}  # no partition/account key
    # only the inference rules' GPU request and runtime (never an empty mapping: it breaks the CLI)
    assert sorted(prof["set-resources"]) == sorted(
        f"{rule}:{key}" for rule in INFERENCE_RULES for key in ("gpu=1", "runtime=30"))
    assert _kv(prof["set-threads"]) == {"train": "9", "evaluate": "9", "zeroshot_eval": "9"}


def test_partition_and_account_from_environment(monkeypatch):
    prof = _profile("slurm", monkeypatch, MESC3D_SLURM_PARTITION="cpuq", MESC3D_SLURM_GPU_PARTITION="gpuq",
                    MESC3D_SLURM_ACCOUNT="proj42", MESC3D_SLURM_GPU_MODEL="a100", SBATCH_PARTITION="other")
    dflt = _kv(prof["default-resources"])
    assert dflt["slurm_partition"] == "cpuq" and dflt["slurm_account"] == "proj42"
    assert sorted(prof["set-resources"]) == sorted(
        [f"{rule}:{key}" for rule in ("pretrain_pointmae", "pretrain_prompt", "train", *INFERENCE_RULES)
         for key in ("slurm_partition=gpuq", "gpu_model=a100")]
        + [f"{rule}:{key}" for rule in INFERENCE_RULES for key in ("gpu=1", "runtime=30")])


def test_sbatch_variables_are_the_fallback(monkeypatch):
    prof = _profile("slurm", monkeypatch, SBATCH_PARTITION="batch", SBATCH_ACCOUNT="acc")
    dflt = _kv(prof["default-resources"])
    assert dflt["slurm_partition"] == "batch" and dflt["slurm_account"] == "acc"
    assert "train:slurm_partition=batch" in prof["set-resources"]  # GPU partition falls back too


def test_ci_overlay_and_local_profile_parse(monkeypatch):
    ci = _profile(str(REPO / "profiles/slurm-ci"), monkeypatch)
    assert _kv(ci["default-resources"])["slurm_partition"] == "debug" and "slurm_account" not in str(ci)
    assert ci["slurm-status-command"] == "squeue" and int(ci["slurm-init-seconds-before-status-checks"]) <= 6
    assert int(_kv(ci["default-resources"])["mem_mb"]) >= 400 and "train:mem_mb=2000" in ci["set-resources"]
    local = _profile(str(REPO / "profiles/local"), monkeypatch)
    assert local["cores"] == "all" and local["keep-going"] == "False" and "executor" not in local


def test_dry_run_from_root_with_both_profiles(tmp_path):
    """End to end through the CLI: lookup from the root, YTE, profile merge, resource resolution."""
    wf = tmp_path / "wf"
    wf.mkdir()
    (wf / "Snakefile").write_text(TOY)
    cmd = [SNAKEMAKE, "--profile", "slurm", "--profile", "profiles/slurm-ci", "-n", "all",
           "--snakefile", str(wf / "Snakefile"), "--directory", str(wf)]
    res = subprocess.run(cmd, cwd=REPO, env=_env(MESC3D_SLURM_PARTITION="ignored"),
                         capture_output=True, text=True, timeout=300)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert "Using profiles slurm and profiles/slurm-ci" in out
    resources = {m.group(1): dict(kv.split("=", 1) for kv in m.group(2).split(", "))
                 for m in re.finditer(r"^rule (\w+):\n(?:    .*\n)*?    resources: (.*)$", out, flags=re.M)}
    assert resources["train"]["gpu"] == "1" and resources["train"]["mem_mb"] == "2000"
    assert resources["prep"]["slurm_partition"] == "debug" and "threads: 4" not in out  # max-threads: 1


def test_literal_command_dry_runs_real_workflow():
    """`snakemake --profile slurm -n all` exactly as a user types it at the repository root."""
    res = subprocess.run([SNAKEMAKE, "--profile", "slurm", "-n", "all"], cwd=REPO, env=_env(),
                         capture_output=True, text=True, timeout=300)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-4000:]
    assert "Using profile slurm" in out and "rule train:" in out
