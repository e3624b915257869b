"""mesc3d.sheet without Snakemake: strict parsing (one line naming the sheet and the column), run
configs, table inputs from the table registry, manifests, download/weights arguments; and a new table
added through the registry (docs/extending.md, (d))."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from mesc3d.errors import ConfigError
from mesc3d.sheet import Sheet, download_args, load_sheet, weights_args

REPO = Path(__file__).resolve().parents[1]
HEAD = "exp\tkind\ttables\tlabel\tsame_as\toverrides\n"
ROWS = ("mesc3d\tmesc3d\ttable1,table2,complexity\tMESC-3D\t\t\n"
        "retrieval\tretrieval\ttable1\tNN\t\t\n"
        "tab3_esm\tmesc3d\ttable3\t+ESM\t\tmodel.prior_injection=none\n"
        "tab3_esm_3dspl\talias\ttable3,tab_teachers\t+ESM+3DSPL\tmesc3d\t\n"
        "tab5_shallow\tmesc3d\ttab5\tshallow\t\tprompt.n_deep=0\n")
CONFIG = {"base": {"preset": "small"}, "zeroshot": {"with_prior": "mesc3d", "without_prior": "tab3_esm"}}


def write(tmp_path, text, name="sheet.tsv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def one_line(tmp_path, text, *needles):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        Sheet(path, CONFIG).check()
    msg = str(err.value)
    assert len(msg.splitlines()) == 1 and str(path) in msg, msg
    for n in needles:
        assert n in msg, msg
    return msg


@pytest.mark.parametrize("column", ["overrides", "kind", "exp", "label"])
def test_a_duplicated_column_is_refused(tmp_path, column):
    # pandas renames a second column to `<name>.1` and the row silently loses its value
    head = HEAD.rstrip("\n") + f"\t{column}\n"
    rows = "".join(r + "\tx\n" for r in ROWS.splitlines())
    one_line(tmp_path, head + rows, f"column '{column}' appears 2 times")


def test_unknown_columns_and_typos_are_refused(tmp_path):
    one_line(tmp_path, HEAD.replace("overrides", "overides") + ROWS, "unknown column 'overides'",
             "did you mean 'overrides'")
    one_line(tmp_path, HEAD.rstrip("\n") + "\tnotes\n" + "".join(r + "\tx\n" for r in ROWS.splitlines()),
             "unknown column 'notes'")


def test_schema_errors_name_the_row_and_column(tmp_path):
    msg = one_line(tmp_path, HEAD + ROWS.replace("tab5_shallow\t", "Tab5-shallow\t"), "column 'exp'")
    assert "Error validating" not in msg
    one_line(tmp_path, HEAD + ROWS.replace("table1,table2", "table1;table2"), "row 'mesc3d'", "column 'tables'")
    one_line(tmp_path, HEAD + ROWS.replace("prompt.n_deep=0", "prompt.n_deep"), "row 'tab5_shallow'",
             "column 'overrides'")
    one_line(tmp_path, HEAD + ROWS.replace("\tretrieval\ttable1", "\tnearest\ttable1"), "row 'retrieval'",
             "column 'kind'", "not a run kind")
    one_line(tmp_path, HEAD + ROWS.replace("\tNN\t", "\t\t"), "row 'retrieval'", "column 'label'")
    one_line(tmp_path, HEAD + ROWS.replace("\tmesc3d\t\n", "\tmesc3d\tseed=1\n"), "alias", "overrides")


@pytest.mark.parametrize("header", ["exp\tkind\ttables\tlabel\toverrides\toverrides\n",
                                    "exp\tkind\ttables\tlabel\toverides\n"])
def test_the_workflow_stops_at_dag_parse_time_in_one_line(tmp_path, header):
    rows = "".join("\t".join(r.split("\t")[:4] + ["", ""][: header.count("\t") - 3]) + "\n" for r in ROWS.splitlines())
    path = write(tmp_path, header + rows)
    res = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--config", f"experiments={path}", "tables=[table1]"],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert res.returncode != 0
    err = [line for line in res.stderr.splitlines() if "mesc3d workflow: error:" in line]
    assert len(err) == 1 and str(path) in err[0], res.stderr[-2000:]
    assert "'overrides'" in err[0] or "'overides'" in err[0], err[0]
    assert "Traceback" not in res.stderr


def test_run_configs_aliases_and_prompt_keys(tmp_path):
    s = Sheet(write(tmp_path, HEAD + ROWS), CONFIG)
    s.check(["table1", "table3"])
    assert s.exps(kind="mesc3d") == ["mesc3d", "tab3_esm", "tab5_shallow"]
    assert s.target("tab3_esm_3dspl") == "mesc3d" and s.target("tab3_esm") == "tab3_esm"
    assert s.run_config("tab3_esm").model.prior_injection == "none" and not s.uses_prior("tab3_esm")
    assert s.prompt_key("tab5_shallow") == "tab5_shallow" and s.prompt_key("mesc3d") == "default"
    assert s.names(["retrieval", "class_mean"]) == "retrieval"
    bad = Sheet(write(tmp_path, HEAD + ROWS.replace("prompt.n_deep=0", "data.n_views=3")), CONFIG)
    with pytest.raises(ConfigError, match="shared by every run"):
        bad.check()


def test_table_inputs_come_from_the_registry(tmp_path):
    s = Sheet(write(tmp_path, HEAD + ROWS), CONFIG)
    assert s.table_inputs("table3") == ["results/manifests/tab3_esm.json", "results/eval/tab3_esm/per_category.csv",
                                        "results/manifests/tab3_esm_3dspl.json",
                                        "results/eval/tab3_esm_3dspl/per_category.csv"]
    # the zero-shot table takes the run of its config key; an alias reads its target's zero-shot results
    assert s.table_inputs("zeroshot") == ["results/manifests/mesc3d.json", "results/zeroshot/mesc3d/per_category.csv"]
    assert "results/zeroshot/mesc3d/per_category.csv" in s.table_inputs("tab_teachers")
    assert s.table_inputs("table2") == ["results/manifests/mesc3d.json", "results/eval_pix3d/mesc3d/per_category.csv"]
    assert "results/complexity/mesc3d.csv" in s.table_inputs("complexity")
    assert s.table_arg("table3") == "table3=tab3_esm,tab3_esm_3dspl"
    m = s.manifest("tab3_esm_3dspl")  # an alias: its target's config
    assert m["label"] == "+ESM+3DSPL" and m["uses_prior"] and m["loss"] == "l1" and m["same_as"] == "mesc3d"
    assert m["categories"][0] == "airplane" and len(m["categories"]) == 13
    with pytest.raises(ValueError, match="list table zeroshot"):
        Sheet(write(tmp_path, HEAD + ROWS.replace("table1,table2,", "table1,zeroshot,")), CONFIG).check()


def test_download_and_weights_arguments_share_one_implementation():
    cfg = {"downloads": {"r2n2": {"url": "https://a/x.tgz", "alternates": ["https://b/x.tgz"], "sha256": None,
                                  "top_dir": "ShapeNet"}},
           "weights": {"clip": {"url": "https://c/w.pt", "sha256": "ab" * 32, "size": 10, "out": "weights/w.pt",
                                "local_file": "/data/w.pt"}}}
    assert download_args(cfg, "r2n2") == ("--url https://a/x.tgz --url https://b/x.tgz --sha256 null "
                                          "--lock config/checksums.lock.json --top-dir ShapeNet")
    assert weights_args(cfg, "weights/w.pt") == ("--name clip --no-extract --force --archive weights/w.pt --out weights "
                                                 "--local-archive /data/w.pt --url https://c/w.pt --sha256 " + "ab" * 32
                                                 + " --size 10 --kind auto")


def test_a_new_table_from_existing_runs_is_one_registry_entry(tmp_path, monkeypatch):
    """docs/extending.md (d): a spec in mesc3d/table_specs.py + sheet tags (+ config `tables`): 3 files."""
    from mesc3d import table_specs
    from mesc3d.cli import tables as tables_cli
    from mesc3d.table_specs import TableSpec

    spec = TableSpec("tab_prior", "table_prior", "ablation", ablation=True, caption="With and without the prior.")
    monkeypatch.setitem(table_specs.TABLES, spec.id, spec)
    s = Sheet(write(tmp_path, HEAD + ROWS.replace("table3\t+ESM\t", "table3,tab_prior\t+ESM\t")
                    .replace("table1,table2,complexity", "table1,tab_prior")), CONFIG)
    s.check(["tab_prior"])
    res = tmp_path / "results"
    for exp in ("mesc3d", "tab3_esm"):
        (res / "eval" / exp).mkdir(parents=True)
        pd.DataFrame([dict(category=c, n_shapes=2, cd_l1_x100=1.0, cd_l2_x1000=2.0 + (exp == "mesc3d"), fscore=0.9)
                      for c in ("chair", "vessel")]).to_csv(res / "eval" / exp / "per_category.csv", index=False)
    for f in s.table_inputs("tab_prior"):
        if "manifests" in f:
            (res / f[len("results/"):]).parent.mkdir(parents=True, exist_ok=True)
            (res / f[len("results/"):]).write_text(s.manifest_json(Path(f).stem))
    assert tables_cli.main(["--results", str(res), "--out", str(tmp_path / "t"), "--table", s.table_arg("tab_prior")]) == 0
    t = pd.read_csv(tmp_path / "t" / "table_prior.csv").set_index("exp")
    assert list(t.index) == ["mesc3d", "tab3_esm"] and t.loc["mesc3d", "cd_l2_x1000:mean"] == 3.0
    assert "With and without the prior." in (tmp_path / "t" / "table_prior.md").read_text()


def test_load_sheet_of_the_repository():
    for path in ("config/experiments.tsv", "config/smoke_experiments.tsv"):
        assert "mesc3d" in load_sheet(REPO / path).index


def test_normalise_config_reads_nested_strings_and_the_meshes_root():
    from mesc3d.sheet import normalise_config

    cfg = {"base": {"data": {"source": "meshes", "root": "data/x"}}, "table_seeds": {"claims": "3"},
           "meshes": {"root": "/my/meshes"}, "synthetic": {"enabled": "false"}}
    normalise_config(cfg)
    assert cfg["base"]["data"]["root"] == "/my/meshes"
    assert cfg["table_seeds"]["claims"] == 3 and cfg["synthetic"]["enabled"] is False
    plain = {"base": {"data": {"source": "shapenet", "root": "data/x"}}, "meshes": {"root": "/my/meshes"}}
    assert normalise_config(plain)["base"]["data"]["root"] == "data/x"
