"""The workflow passes Snakemake's own linter and snakefmt's style check (as the snakemake-workflows
catalogue requires): a rule without a log, an absolute path or a mis-formatted .smk fails here."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SMK = ["Snakefile", *sorted(str(p.relative_to(REPO)) for p in (REPO / "workflow" / "rules").glob("*.smk"))]


def _tool(name: str) -> str:
    path = shutil.which(name) or str(Path(sys.executable).with_name(name))
    assert Path(path).exists(), f"{name} is not installed: pip install -e '.[test]'"
    return path


def test_snakemake_lint_is_clean():
    res = subprocess.run([_tool("snakemake"), "--lint", "--cores", "1"], cwd=REPO, capture_output=True, text=True,
                         timeout=300)
    out = res.stdout + res.stderr
    assert res.returncode == 0 and "Lints for" not in out, out[-3000:]


def test_snakefmt_check_is_clean():
    res = subprocess.run([_tool("snakefmt"), "--check", *SMK], cwd=REPO, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:] + "\nrun: snakefmt Snakefile workflow/"


def test_conda_environment_lists_the_same_packages_as_pyproject():
    """environment.yml (clusters with conda) and pyproject.toml (venv, CI) must not drift apart."""
    import tomllib

    import yaml

    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    env = yaml.safe_load((REPO / "environment.yml").read_text())["dependencies"]
    pip = next(d["pip"] for d in env if isinstance(d, dict) and "pip" in d)
    assert sorted(pip) == sorted(deps)
