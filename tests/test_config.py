"""Config: presets, strict keys, enums, overrides, YAML round trip, stable hash; resolve-config CLI."""

import pytest
import yaml

from mesc3d.cli import main as cli_main
from mesc3d.cli.resolve_config import main as resolve_main
from mesc3d.config import ExperimentCfg, config_hash, dump_yaml, from_dict, load_config, parse_overrides
from mesc3d.errors import ConfigError


def test_defaults_are_the_paper_preset():
    cfg = from_dict({})
    assert cfg == ExperimentCfg()
    assert cfg.model.n_points == 2048 and cfg.train.epochs == 400 and cfg.train.batch_size == 24
    assert cfg.model.mit_heads == 8 and cfg.model.mit_depth == 4 and cfg.model.token_dim * cfg.model.n_tokens == 768


def test_small_preset_then_yaml_then_overrides(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("preset: small\ntrain: {epochs: 7}\n")
    cfg = load_config(path, ["train.epochs=3", "model.use_esm=false"])
    assert cfg.preset == "small" and cfg.model.n_points == 512  # preset
    assert cfg.train.epochs == 3  # override beats YAML
    assert cfg.model.use_esm is False


def test_round_trip_and_hash(tmp_path):
    cfg = load_config(None, ["preset=small", "seed=3"])
    path = tmp_path / "resolved.yaml"
    path.write_text(dump_yaml(cfg))
    again = load_config(path)
    assert again == cfg and config_hash(again) == config_hash(cfg)
    assert config_hash(load_config(None, ["preset=small", "seed=4"])) != config_hash(cfg)


@pytest.mark.parametrize(
    "data, needle",
    [
        ({"model": {"use_esn": True}}, "model.use_esn"),
        ({"model": {"prior_injection": "sideways"}}, "model.prior_injection"),
        ({"train": {"epochs": "many"}}, "train.epochs"),
        ({"model": {"use_esm": "yes"}}, "model.use_esm"),
        ({"data": {"categories": ["chair", "spaceship"]}}, "spaceship"),
        ({"preset": "huge"}, "preset"),
        ({"data": {"train_frac": 0.95}}, "test split"),
        ({"prompt": {"point_encoder": "ulip_pointbert"}}, "not implemented"),
    ],
)
def test_invalid_config_is_one_clear_error(data, needle):
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        from_dict(data)


def test_overrides_parse_yaml_values():
    assert parse_overrides(["a.b=1", "a.c=true", "d=[1, 2]", "e=x"]) == {"a": {"b": 1, "c": True}, "d": [1, 2], "e": "x"}
    with pytest.raises(ConfigError):
        parse_overrides(["novalue"])


def test_resolve_config_cli(tmp_path, capsys):
    out = tmp_path / "configs" / "exp.yaml"
    assert resolve_main(["--json", '{"preset": "small", "name": "exp", "model": {"use_esm": false}}', "--out", str(out)]) == 0
    data = yaml.safe_load(out.read_text())
    assert data["name"] == "exp" and data["model"]["use_esm"] is False and data["model"]["n_points"] == 512
    # bad config: one line on stderr, exit 1, nothing written
    bad = tmp_path / "configs" / "bad.yaml"
    assert cli_main(["resolve-config", "--json", '{"model": {"nope": 1}}', "--out", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "model.nope" in err and "Traceback" not in err and not bad.exists()
    assert list(out.parent.glob(".*tmp*")) == []
