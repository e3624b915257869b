"""Pretrained weights are checksummed local download rules and declared job inputs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")


def _dry(*args) -> str:
    res = subprocess.run([SNAKEMAKE, "-n", "--forceall", *args], cwd=REPO, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res.stdout


def _jobs(out: str) -> list[dict]:
    jobs, cur = [], None
    for line in out.splitlines():
        m = re.match(r"^(local)?rule (\w+):$", line.strip())
        if m:
            cur = {"rule": m.group(2), "local": bool(m.group(1)), "input": "", "output": ""}
            jobs.append(cur)
        elif cur is not None and re.match(r"^\s+(input|output): ", line):
            key, val = line.strip().split(": ", 1)
            cur[key] = val
    return jobs


def test_real_config_fetches_weights_locally_and_jobs_declare_them():
    cfg = yaml.safe_load((REPO / "config/shapenet.yaml").read_text())
    clip = cfg["weights"]["clip_vit_b16_openai"]
    assert clip["url"].startswith("https://openaipublic.azureedge.net/clip/models/")
    assert clip["sha256"] == clip["url"].split("/")[-2] and len(clip["sha256"]) == 64  # the URL carries the hash
    import open_clip

    assert open_clip.get_pretrained_url("ViT-B-16", "openai") == clip["url"]  # open_clip 3.3.0's table
    jobs = _jobs(_dry("--configfile", "config/shapenet.yaml", "--", "all"))
    weights = {j["output"]: j for j in jobs if j["rule"] == "download_weights"}
    assert set(weights) == {"resources/weights/modelnet_1k.pth", "resources/weights/clip_vit_b16_openai.pt"}
    rule_text = (REPO / "workflow/rules/weights.smk").read_text()
    assert "localrule: True" in rule_text  # runs on the submitting host, never as a cluster job
    by_rule = {}
    for j in jobs:
        by_rule.setdefault(j["rule"], []).append(j)
    assert all("resources/weights/clip_vit_b16_openai.pt" in j["input"] for j in by_rule["pretrain_prompt"])
    assert all("resources/weights/modelnet_1k.pth" in j["input"] for j in by_rule["cache_features"] + by_rule["train"])
    tab4 = [j for j in by_rule["train"] if "tab4_clip" in j["output"]]
    assert len(tab4) == 2 and all("clip_vit_b16_openai.pt" in j["input"] for j in tab4)
    assert "pretrain_pointmae" not in by_rule  # official weights replace our pretraining


def test_switching_to_pretrain_pth_fetches_it(tmp_path):
    overlay = tmp_path / "o.yaml"
    overlay.write_text("base:\n  model:\n    point_mae:\n      checkpoint: resources/weights/pretrain.pth\n")
    jobs = _jobs(_dry("--configfile", "config/shapenet.yaml", str(overlay), "--", "all"))
    assert "resources/weights/pretrain.pth" in {j["output"] for j in jobs if j["rule"] == "download_weights"}


def test_every_job_shell_has_the_hubs_switched_off():
    text = (REPO / "Snakefile").read_text()
    prefix = re.search(r'shell\.prefix\(\s*"([^"]+)"\s*\)', text).group(1)  # snakefmt may wrap the call
    assert "set -euo pipefail" in prefix
    for var in ("HF_HUB_OFFLINE=1", "TRANSFORMERS_OFFLINE=1"):
        assert var in prefix
