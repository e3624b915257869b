"""Frozen 2D teachers and the agglomerated image encoder: real EfficientNet-Lite0 ImageNet weights,
token shapes, the uncertainty-fusion formula, where gradients go, tiny DINOv2/CLIP, refusal without weights."""

from __future__ import annotations

import pytest
import torch

from mesc3d.errors import BadInputError
from mesc3d.models.effnet_lite0 import (EFFNET_INPUT_SIZE, effnet_preprocess, imagenet_class_names,
                                        load_effnet_lite0)

CAT_CLASSES = {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat", "cougar", "lynx"}


@pytest.fixture(scope="module")
def effnet():
    return load_effnet_lite0()


def _chelsea() -> torch.Tensor:
    from skimage.data import chelsea  # a real photo of a cat, shipped inside the scikit-image wheel

    return torch.from_numpy(chelsea()).permute(2, 0, 1)[None].float() / 255.0  # (1, 3, 300, 451)


def _top5(model, x) -> list[str]:
    names = imagenet_class_names()
    with torch.no_grad():
        logits = model(effnet_preprocess(x))  # (1, 1000)
    return [names[i] for i in logits[0].topk(5).indices.tolist()]


def test_effnet_lite0_packaged_weights_are_real(effnet, one_thread):
    x = _chelsea()
    top5 = _top5(effnet, x)
    assert CAT_CLASSES & set(top5[:1]), top5  # the top-1 class is a cat
    assert len(imagenet_class_names()) == 1000
    assert not effnet.training
    with torch.no_grad():
        feats = effnet.forward_features(effnet_preprocess(x))
    assert feats.shape == (1, 1280, 7, 7)
    assert tuple(effnet.classifier.weight.shape) == (1000, 1280)
    # the same architecture with random weights does not see a cat
    import timm

    torch.manual_seed(0)
    rand = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    assert not CAT_CLASSES & set(_top5(rand, x))


def test_effnet_preprocess_range_and_size():
    x = torch.rand(2, 3, 32, 48)
    y = effnet_preprocess(x)
    assert y.shape == (2, 3, EFFNET_INPUT_SIZE, EFFNET_INPUT_SIZE)
    assert float(y.min()) >= -1.0 - 1e-5 and float(y.max()) <= 1.0 + 1e-5
    z = effnet_preprocess(torch.ones(1, 3, EFFNET_INPUT_SIZE, EFFNET_INPUT_SIZE))
    assert torch.allclose(z, torch.ones_like(z))  # white -> +1
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        effnet_preprocess(torch.zeros(3, 8, 8))


def test_effnet_weights_errors(tmp_path):
    with pytest.raises(BadInputError, match="not found"):
        load_effnet_lite0(str(tmp_path / "absent.pth"))
    bad = tmp_path / "bad.pth"
    torch.save({"_conv_stem.weight": torch.zeros(1)}, bad)
    with pytest.raises(BadInputError, match="not an EfficientNet-Lite0"):
        load_effnet_lite0(str(bad))


# ------------------------------------------------------------------ teachers and the agglomerated encoder
from mesc3d.config import ENUMS, from_dict  # noqa: E402
from mesc3d.errors import ConfigError  # noqa: E402
from mesc3d.models.agglomerated import AgglomeratedEncoder, build_agglomerated  # noqa: E402
from mesc3d.models.image_encoder import build_image_encoder  # noqa: E402
from mesc3d.models.teachers import TEACHERS, build_teacher  # noqa: E402

T, D = 4, 8
TINY_CLIP = {"embed_dim": 24, "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16,
                                             "patch_size": 16},
             "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 16, "heads": 1, "layers": 1}}


def _cfg(**model):
    return from_dict({"preset": "small", "data": {"image_size": 32},
                      "model": {"n_tokens": T, "token_dim": D, "mit_heads": 2, **model}}).model


@pytest.fixture(scope="module")
def tiny_dinov2(tmp_path_factory):
    """A tiny random transformers DINOv2 saved as a local folder (the real loading path)."""
    from transformers import Dinov2Config, Dinov2Model

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("dinov2_tiny")
    cfg = Dinov2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                       image_size=28, patch_size=14)
    Dinov2Model(cfg).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """A tiny open_clip architecture (registered from a JSON config) and its random visual weights."""
    import json

    import open_clip

    base = tmp_path_factory.mktemp("clip_tiny")
    (base / "TinyCLIP-test.json").write_text(json.dumps(TINY_CLIP))
    open_clip.add_model_config(base / "TinyCLIP-test.json")
    from mesc3d.models.backbones import build_clip_visual

    import os

    from mesc3d.models.backbones import ALLOW_RANDOM_CLIP_ENV

    old, os.environ[ALLOW_RANDOM_CLIP_ENV] = os.environ.get(ALLOW_RANDOM_CLIP_ENV), "1"  # random: test weights
    try:
        visual, _, _ = build_clip_visual(_cfg(clip_arch="TinyCLIP-test"), None, "")
    finally:
        os.environ.pop(ALLOW_RANDOM_CLIP_ENV) if old is None else os.environ.update({ALLOW_RANDOM_CLIP_ENV: old})
    path = base / "tiny_clip.pt"
    torch.save({f"visual.{k}": v for k, v in visual.state_dict().items()}, path)
    return {"arch": "TinyCLIP-test", "weights": str(path)}


def _all_teachers_cfg(tiny_dinov2, tiny_clip, **extra):
    return _cfg(dinov2_s14_weights=tiny_dinov2, dinov2_b14_weights=tiny_dinov2, clip_arch=tiny_clip["arch"],
                clip_weights=tiny_clip["weights"], **extra)


def test_teacher_names_are_the_config_enum():
    assert set(TEACHERS) == set(ENUMS["model.teachers"])
    for name in ("effnet_lite0", "dinov2_s14", "dinov2_b14", "agglomerated"):
        assert name in ENUMS["model.image_encoder"]
    with pytest.raises(ConfigError, match="model.teachers"):
        _cfg(image_encoder="agglomerated", teachers=["resnet18", "vgg"])
    with pytest.raises(ConfigError, match="model.teacher_fusion"):
        _cfg(teacher_fusion="max")
    with pytest.raises(ConfigError, match="distinct"):
        _cfg(image_encoder="agglomerated", teachers=["resnet18", "resnet18"])


def test_each_teacher_feature_and_token_shapes(tiny_dinov2, tiny_clip, one_thread):
    m = _all_teachers_cfg(tiny_dinov2, tiny_clip)
    x = torch.rand(2, 3, 32, 32)
    dims = {"resnet18": 1000, "effnet_lite0": 1280, "dinov2_s14": 32, "dinov2_b14": 32, "clip": 24}
    for name in TEACHERS:
        teacher = build_teacher(name, m)
        assert teacher.frozen == (name != "resnet18")
        feat = teacher(x)
        assert feat.shape == (2, dims[name]) and teacher.out_dim == dims[name], name
        enc = AgglomeratedEncoder([teacher], "mean", T, D)
        assert enc(x).shape == (2, T, D), name
    assert build_teacher("dinov2_s14", m).preprocess(x).shape == (2, 3, 224, 224)  # its own size
    assert build_teacher("clip", m).preprocess(x).shape == (2, 3, 32, 32)  # the arch's image_size
    for encoder in ("effnet_lite0", "dinov2_s14", "dinov2_b14"):  # registered single-teacher encoders
        enc = build_image_encoder(_all_teachers_cfg(tiny_dinov2, tiny_clip, image_encoder=encoder),
                                  from_dict({}).data)
        assert enc(x).shape == (2, T, D) and enc.names == [encoder]


@pytest.mark.parametrize("fusion", ["uncertainty", "mean", "concat"])
def test_fusion_follows_its_formula(tiny_dinov2, fusion, one_thread):
    m = _cfg(image_encoder="agglomerated", teachers=["resnet18", "dinov2_s14"], teacher_fusion=fusion,
             dinov2_s14_weights=tiny_dinov2)
    enc = build_agglomerated(m).eval()
    x = torch.rand(3, 3, 32, 32)
    if fusion == "uncertainty":
        assert torch.equal(enc.sigmas(), torch.ones(2))  # sigma initialised at 1 -> equal weights
        with torch.no_grad():
            enc.log_var.copy_(torch.tensor([0.3, -0.7]))
        sigma = torch.exp(0.5 * enc.log_var.detach())
        precision = 0.5 / sigma**2
        assert torch.allclose(enc.weights(), precision / precision.sum())
        rep = enc.fusion_report()
        assert [r["teacher"] for r in rep] == ["resnet18", "dinov2_s14"]
        assert rep[0]["sigma"] == pytest.approx(float(sigma[0])) and rep[1]["weight"] > rep[0]["weight"]
    with torch.no_grad():
        z = enc.teacher_tokens(x)  # 2 x (3, T, D)
        out = enc(x)
    assert out.shape == (3, T, D)
    if fusion == "concat":
        expected = enc.mix(torch.cat(z, dim=-1))
    else:
        a = enc.weights()
        if fusion == "mean":
            assert torch.allclose(a, torch.full((2,), 0.5))
        expected = a[0] * z[0] + a[1] * z[1]
    assert torch.allclose(out, expected, atol=1e-6)


def test_gradients_reach_sigma_and_projections_not_frozen_teachers(tiny_dinov2, one_thread):
    m = _cfg(image_encoder="agglomerated", teachers=["resnet18", "effnet_lite0", "dinov2_s14"],
             dinov2_s14_weights=tiny_dinov2)
    enc = build_agglomerated(m).train()
    assert not enc.teachers[1].net.training and not enc.teachers[2].net.training  # frozen stay in eval
    enc(torch.rand(2, 3, 32, 32)).square().sum().backward()
    assert enc.log_var.grad is not None and enc.log_var.grad.abs().sum() > 0
    for proj in enc.projections:
        assert proj.weight.grad is not None and proj.weight.grad.abs().sum() > 0
    assert all(p.grad is not None for p in enc.teachers[0].parameters())  # the trainable ResNet-18
    for frozen in enc.teachers[1:]:
        assert all(p.grad is None and not p.requires_grad for p in frozen.parameters())


def test_teachers_without_weights_are_refused(tmp_path):
    for name, key in (("dinov2_s14", "dinov2_s14_weights"), ("dinov2_b14", "dinov2_b14_weights"),
                      ("clip", "clip_weights")):
        with pytest.raises(ConfigError, match=f"model.{key} is empty"):
            build_teacher(name, _cfg())
        with pytest.raises(BadInputError, match="does not exist"):
            build_teacher(name, _cfg(**{key: str(tmp_path / "absent")}))
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInputError, match="not a transformers DINOv2 folder"):
        build_teacher("dinov2_s14", _cfg(dinov2_s14_weights=str(tmp_path / "empty")))


def test_training_logs_sigma_per_epoch(tiny_data, tiny_dinov2, tmp_path, one_thread):
    import pandas as pd

    from mesc3d.cli.train import main as train_main

    out = tmp_path / "run"
    assert train_main(["--config", str(tiny_data["config"]), "--train", str(tiny_data["train"]),
                       "--val", str(tiny_data["val"]), "--out", str(out),
                       "--set", "model.prior_injection=none", "--set", "model.image_encoder=agglomerated",
                       "--set", "model.teachers=[resnet18,dinov2_s14]",
                       "--set", f"model.dinov2_s14_weights={tiny_dinov2}"]) == 0
    fusion = pd.read_csv(out / "teacher_fusion.csv")
    assert list(fusion.columns) == ["epoch", "teacher", "sigma", "weight"]
    assert fusion["epoch"].tolist() == [1, 1, 2, 2] and fusion["teacher"].tolist()[:2] == ["resnet18", "dinov2_s14"]
    assert (fusion["sigma"] != 1.0).any()  # sigma was learned
    assert fusion.groupby("epoch")["weight"].sum().round(6).eq(1.0).all()


# ------------------------------------------------------------------ teachers are what their key says
def _dino_folder(tmp_path, name="dino"):
    from transformers import Dinov2Config, Dinov2Model

    torch.manual_seed(0)
    folder = tmp_path / name
    Dinov2Model(Dinov2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                             image_size=28, patch_size=14)).save_pretrained(folder)
    return folder


def test_a_bert_folder_is_not_a_dinov2_teacher(tmp_path):
    from transformers import BertConfig, BertModel

    BertModel(BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                         vocab_size=64)).save_pretrained(tmp_path / "bert")
    with pytest.raises(BadInputError, match="model_type 'bert', expected 'dinov2'") as err:
        build_teacher("dinov2_s14", _cfg(dinov2_s14_weights=str(tmp_path / "bert")))
    assert "model.dinov2_s14_weights" in str(err.value) and "\n" not in str(err.value)


def test_a_truncated_safetensors_file_is_one_line(tmp_path):
    folder = _dino_folder(tmp_path)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(BadInputError, match="model.dinov2_s14_weights: not a loadable") as err:
        build_teacher("dinov2_s14", _cfg(dinov2_s14_weights=str(folder)))
    assert "\n" not in str(err.value)


def test_a_config_json_with_other_shapes_is_one_line(tmp_path):
    import json

    folder = _dino_folder(tmp_path)
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, "hidden_size": 48, "intermediate_size": 96}))
    with pytest.raises(BadInputError, match="model.dinov2_s14_weights") as err:
        build_teacher("dinov2_s14", _cfg(dinov2_s14_weights=str(folder)))
    assert "\n" not in str(err.value)


def test_an_empty_required_teacher_key_fails_config_validation():
    from mesc3d.config import MissingWeightsError

    for encoder, key in (("dinov2_s14", "dinov2_s14_weights"), ("dinov2_b14", "dinov2_b14_weights")):
        with pytest.raises(MissingWeightsError, match=f"model.{key} is empty"):
            _cfg(image_encoder=encoder)
    with pytest.raises(MissingWeightsError, match="model.clip_weights is empty"):
        _cfg(image_encoder="agglomerated", teachers=["resnet18", "clip"])
    _cfg(image_encoder="agglomerated", teachers=["resnet18", "effnet_lite0"])  # optional keys: fine empty
