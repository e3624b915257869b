"""Bad configs, sheets and arguments stop before any work with one line naming the key/row/file, and the stage slices / code fingerprints behave as the workflow relies on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mesc3d.cli import main as mesc3d
from mesc3d.config import from_dict
from mesc3d.config_slices import check_same_run, stage_files, stage_slice
from mesc3d.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def one_line_error(capsys, argv: list[str], *needles: str) -> str:
    assert mesc3d(argv) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for n in needles:
        assert n in err, err
    return err


@pytest.mark.parametrize("item, key", [
    ("train.epochs=-5", "train.epochs"), ("train.batch_size=0", "train.batch_size"),
    ("train.val_every=0", "train.val_every"), ("train.lr=.nan", "train.lr"), ("data.categories=[]", "data.categories"),
    ("data.n_views=0", "data.n_views"), ("seed=-1", "seed"), ("prompt.batch_size=0", "prompt.batch_size"),
    ("train=3", "train"),
])
def test_resolve_config_refuses_bad_values(capsys, tmp_path, item, key):
    out = tmp_path / "run.yaml"
    one_line_error(capsys, ["resolve-config", "--json", '{"preset": "small"}', "--set", item, "--out", str(out)], key)
    assert not out.exists()


def test_override_of_a_value_then_its_key_is_one_line(capsys, tmp_path):
    out = tmp_path / "run.yaml"
    one_line_error(capsys, ["resolve-config", "--json", "{}", "--set", "train=3", "--set", "train.epochs=2",
                            "--out", str(out)], "'train'")
    assert not out.exists()


@pytest.mark.parametrize("flag, value", [("--size", "abc"), ("--strip-components", "x")])
def test_download_refuses_bad_numbers_before_downloading(capsys, tmp_path, flag, value):
    archive = tmp_path / "a.zip"
    archive.write_bytes(b"not read")
    out = tmp_path / "out"
    one_line_error(capsys, ["download", "--local-archive", str(archive), "--no-verify", "--out", str(out),
                            flag, value], flag)
    assert not out.exists()


def _snakemake_n(tmp_path, sheet: str):
    path = tmp_path / "sheet.tsv"
    path.write_text(sheet)
    return subprocess.run([sys.executable, "-m", "snakemake", "-n", "--config", f"experiments={path}",
                           "tables=[table1]"], cwd=REPO, capture_output=True, text=True, timeout=300)


ROWS = "mesc3d\tmesc3d\ttable1\tMESC-3D\nretrieval\tretrieval\ttable1\tNN\nclass_mean\tclass_mean\ttable1\tCM\n" \
       "tab3_esm\tmesc3d\ttable3\t+ESM\n"


@pytest.mark.slow
def test_sheet_errors_are_one_line_before_any_job(tmp_path):
    res = _snakemake_n(tmp_path, "exp\tkind\ttables\tlabel\n" + ROWS + "mesc3d\tmesc3d\ttable1\tagain\n")
    assert res.returncode == 1
    assert "mesc3d workflow: error:" in res.stderr and "duplicate exp names ['mesc3d']" in res.stderr
    assert "Traceback" not in res.stderr and "File \"" not in res.stderr
    res = _snakemake_n(tmp_path, "exp\tkind\ttables\n" + "".join(r.rsplit("\t", 1)[0] + "\n" for r in ROWS.splitlines()))
    assert res.returncode == 1 and "missing columns ['label']" in res.stderr
    res = _snakemake_n(tmp_path, "exp\tkind\ttables\tlabel\n" + ROWS.replace("table3", "table99"))
    assert res.returncode == 1 and "unknown table ids ['table99']" in res.stderr
    # same_as is an optional column (overrides too, but tab3_esm needs one here: the zero-shot pair)
    res = _snakemake_n(tmp_path, "exp\tkind\ttables\tlabel\toverrides\n"
                       + ROWS.replace("+ESM\n", "+ESM\tmodel.prior_injection=none\n").replace("\n", "\t\n", 3))
    assert res.returncode == 0, res.stderr[-2000:]
    # the zero-shot pair is the config key `zeroshot` alone: a sheet row that lists the table is refused
    res = _snakemake_n(tmp_path, "exp\tkind\ttables\tlabel\toverrides\n"
                       + ROWS.replace("+ESM\n", "+ESM\tmodel.prior_injection=none\n").replace("\n", "\t\n", 3)
                       .replace("table1\tMESC-3D", "table1,zeroshot\tMESC-3D"))
    assert res.returncode == 1 and "list table zeroshot; its runs are the config key zeroshot.with_prior" in res.stderr
    assert "Traceback" not in res.stderr


def test_a_model_is_refused_under_another_runs_config():
    base = {"preset": "small"}
    trained = from_dict({**base, "name": "mesc3d"})
    other = from_dict({**base, "name": "tab3_esm", "model": {"prior_injection": "none"}})
    with pytest.raises(ConfigError, match="model.prior_injection: model 'concat_after_mit' vs config 'none'"):
        check_same_run(trained, other, "results/train/mesc3d/model.pt")
    with pytest.raises(ConfigError, match="seed"):
        check_same_run(trained, from_dict({**base, "seed": 1}), "m.pt")
    # evaluation-only and runtime keys do not matter
    check_same_run(trained, from_dict({**base, "eval": {"fscore_threshold": 0.02}, "train": {"device": "cpu"}}), "m.pt")


def test_slices_follow_resolved_values_and_the_prior():
    cfg = from_dict({"preset": "small", "model": {"prior_injection": "none"}})
    assert stage_slice(cfg, "train")["model.n_points"] == 512  # the preset's value, resolved
    assert not any(k.startswith("prompt.") for k in stage_slice(cfg, "train"))  # no prior: prompt unread
    assert "eval.fscore_threshold" not in stage_slice(cfg, "train")
    assert set(stage_slice(cfg, "prepare")) <= {"seed"} | {k for k in stage_slice(cfg, "prepare") if k.startswith("data.")}
    cfg = from_dict({"model": {"image_weights": "w/resnet18.pth"}, "prompt": {"pretrained": "openai"}})
    assert stage_files(cfg, "train") == ["w/resnet18.pth"]  # "openai" is a tag, not a file
    cfg = from_dict({"prompt": {"pretrained": "weights/clip.bin"}})
    assert stage_files(cfg, "pretrain_prompt") == ["weights/clip.bin"]


def test_code_fingerprint_ignores_comments_and_docstrings(tmp_path):
    from mesc3d import codedeps

    pkg = tmp_path / "mesc3d"
    (pkg / "cli").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "cli" / "__init__.py").write_text("")
    (pkg / "lib.py").write_text('"""Doc."""\nX = 1\n')
    (pkg / "cli" / "run.py").write_text("from mesc3d.lib import X\n")
    (pkg / "unused.py").write_text("Y = 1\n")
    fp = codedeps.fingerprint("mesc3d.cli.run", root=tmp_path)
    assert "mesc3d.lib" in codedeps.closure("mesc3d.cli.run", root=tmp_path)
    (pkg / "lib.py").write_text('"""Another doc."""\n# a comment\nX = 1  # same\n')
    (pkg / "unused.py").write_text("Y = 2\n")
    assert codedeps.fingerprint("mesc3d.cli.run", root=tmp_path) == fp
    (pkg / "lib.py").write_text('"""Doc."""\nX = 2\n')
    assert codedeps.fingerprint("mesc3d.cli.run", root=tmp_path) != fp
