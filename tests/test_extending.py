"""docs/extending.md (a): a new image encoder is one registry entry + its builder (+ a sheet row).

The toy encoder below is registered through ``mesc3d.registries.IMAGE_ENCODERS`` only; the config
accepts its name, ``build_image_encoder`` builds it, and ``mesc3d train`` trains a step with it."""

from __future__ import annotations

import torch
from torch import nn

from mesc3d.registries import IMAGENET_MEAN, IMAGENET_STD, ImageModelSpec, Preprocess

TOY = ImageModelSpec(f"{__name__}:toy_encoder", "mean colour -> tokens (test only)",
                     Preprocess(IMAGENET_MEAN, IMAGENET_STD, 16))


class ToyEncoder(nn.Module):
    def __init__(self, n_tokens: int, token_dim: int):
        super().__init__()
        self.n_tokens, self.token_dim = n_tokens, token_dim
        self.linear = nn.Linear(3, n_tokens * token_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W) in [0, 1]
        from mesc3d.models.backbones import resize_normalize

        p = TOY.preprocess
        x = resize_normalize(images, p.size, p.mean, p.std).mean(dim=(2, 3))  # (B, 3)
        return self.linear(x).reshape(len(images), self.n_tokens, self.token_dim)  # (B, T, D)


def toy_encoder(model_cfg, data_cfg, clip_weights: str = "") -> nn.Module:
    return ToyEncoder(model_cfg.n_tokens, model_cfg.token_dim)


def _register(monkeypatch):
    from mesc3d import config, registries

    monkeypatch.setitem(registries.IMAGE_ENCODERS, "toy", TOY)
    # config.ENUMS is built from the registry when mesc3d.config is imported; a test registers later
    monkeypatch.setitem(config.ENUMS, "model.image_encoder", tuple(registries.IMAGE_ENCODERS))


def test_a_registered_encoder_is_a_config_value_and_builds(monkeypatch):
    from mesc3d.config import ENUMS, from_dict
    from mesc3d.models.image_encoder import build_image_encoder
    from mesc3d.registries import IMAGE_ENCODERS, TEACHERS

    assert ENUMS["model.image_encoder"] == tuple(IMAGE_ENCODERS) and ENUMS["model.teachers"] == tuple(TEACHERS)
    _register(monkeypatch)
    cfg = from_dict({"preset": "small", "model": {"image_encoder": "toy"}})
    enc = build_image_encoder(cfg.model, cfg.data)
    assert isinstance(enc, ToyEncoder)
    assert enc(torch.rand(2, 3, 32, 32)).shape == (2, cfg.model.n_tokens, cfg.model.token_dim)


def test_mesc3d_trains_a_step_with_a_registered_encoder(monkeypatch, tiny_data, tmp_path, one_thread):
    from mesc3d.cli.train import main as train_main

    _register(monkeypatch)
    out = tmp_path / "run"
    assert train_main(["--config", str(tiny_data["config"]), "--train", str(tiny_data["train"]),
                       "--val", str(tiny_data["val"]), "--out", str(out), "--set", "model.prior_injection=none",
                       "--set", "model.image_encoder=toy", "--set", "train.max_steps=1",
                       "--set", "train.epochs=1"]) == 0
    state = torch.load(out / "model.pt", weights_only=True)
    assert any(k.startswith("image_encoder.linear") for k in state["model"]), sorted(state["model"])[:5]
