"""The stage runner (mesc3d.engine.stage): device choice, loop knobs from the config, seeding."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from mesc3d.config import from_dict
from mesc3d.config_slices import STAGES, stage_json
from mesc3d.engine.runtime import seed_everything
from mesc3d.engine.stage import device_name, loop_cfg
from mesc3d.engine.trainer import LoopCfg

HONOUR_DEVICE = {"pretrain_pointmae", "train", "complexity"}  # the stages that read train.device


def test_train_device_is_in_the_slices_of_the_stages_that_honour_it_only():
    cfg = from_dict({"preset": "small", "train": {"device": "cpu"}})
    assert {s for s in STAGES if device_name(cfg, s) == "cpu"} == HONOUR_DEVICE
    assert all(device_name(cfg, s) == "auto" for s in set(STAGES) - HONOUR_DEVICE)
    # editing train.device changes the rerun trigger of exactly those stages
    other = from_dict({"preset": "small", "train": {"device": "cuda"}})
    assert {s for s in STAGES if stage_json(cfg, s) != stage_json(other, s)} == HONOUR_DEVICE


def test_loop_cfg_from_each_training_section():
    cfg = from_dict({"preset": "small", "train": {"device": "cpu", "pointmae_epochs": 20, "max_steps": 7}})
    t, p = cfg.train, cfg.prompt
    assert loop_cfg(cfg, "train") == LoopCfg(t.lr, t.lr_min, t.warmup_lr, t.warmup_epochs, t.epochs, 7,
                                             t.val_every, t.checkpoint_minutes, t.amp, "cpu")
    assert loop_cfg(cfg, "pretrain_pointmae") == LoopCfg(t.pointmae_lr, 0.0, 0.0, 2.0, 20, 7, 1,
                                                         t.checkpoint_minutes, t.amp, "cpu")
    assert loop_cfg(cfg, "pretrain_prompt") == LoopCfg(p.lr, p.lr_min, p.warmup_lr, p.warmup_epochs, p.epochs, 0,
                                                       1, t.checkpoint_minutes, False, "cpu")
    with pytest.raises(KeyError):
        loop_cfg(cfg, "evaluate")


def test_seed_everything_seeds_torch_numpy_and_random():
    draws = []
    for _ in range(2):
        seed_everything(123)
        draws.append((torch.rand(3).tolist(), np.random.rand(3).tolist(), random.random()))
    assert draws[0] == draws[1]
    torch.manual_seed(123)  # the torch stream is exactly torch.manual_seed's (results did not move)
    assert torch.rand(3).tolist() == draws[0][0]
