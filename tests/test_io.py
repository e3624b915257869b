"""Atomic writes, npz/ply round trips, clear errors for corrupt files, LR schedule."""

import math

import numpy as np
import pytest

from mesc3d.engine.schedule import CosineWarmup
from mesc3d.errors import BadInputError
from mesc3d.io import atomic_path, load_npz, save_npz, write_ply, write_text


def test_atomic_path_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "a" / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert not target.exists() and list(target.parent.iterdir()) == []
    write_text(target, "whole")
    assert target.read_text() == "whole"


def test_npz_round_trip_is_deterministic(tmp_path):
    arrays = {"points": np.arange(12, dtype=np.float32).reshape(2, 2, 3), "ids": np.array(["a", "b"])}
    save_npz(tmp_path / "x.npz", **arrays)
    save_npz(tmp_path / "y.npz", **arrays)
    assert (tmp_path / "x.npz").read_bytes() == (tmp_path / "y.npz").read_bytes()
    back = load_npz(tmp_path / "x.npz", required=("points", "ids"))
    np.testing.assert_array_equal(back["points"], arrays["points"])


def test_truncated_npz_is_a_clear_error(tmp_path):
    save_npz(tmp_path / "x.npz", points=np.zeros((100, 3), np.float32))
    data = (tmp_path / "x.npz").read_bytes()
    (tmp_path / "t.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(BadInputError, match="t.npz"):
        load_npz(tmp_path / "t.npz")
    with pytest.raises(BadInputError, match="missing arrays"):
        load_npz(tmp_path / "x.npz", required=("images",))


def test_write_ply(tmp_path):
    write_ply(tmp_path / "p.ply", np.array([[0, 0, 0], [1, 2, 3]], np.float32))
    text = (tmp_path / "p.ply").read_text().splitlines()
    assert text[2] == "element vertex 2" and text[-1] == "1.000000 2.000000 3.000000"
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        write_ply(tmp_path / "q.ply", np.zeros((3, 2)))


def test_cosine_warmup_schedule():
    s = CosineWarmup(lr=1e-3, lr_min=1e-7, warmup_lr=1e-5, warmup_epochs=2, epochs=10, steps_per_epoch=5)
    assert s.lr_at(0) == pytest.approx(1e-5)
    assert s.lr_at(10) == pytest.approx(1e-3)  # end of warmup
    assert s.lr_at(50) == pytest.approx(1e-7)  # last epoch
    lrs = [s.lr_at(i) for i in range(10, 51)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))  # monotone cosine decay
    mid = s.lr_at(30)
    assert mid == pytest.approx(1e-7 + 0.5 * (1e-3 - 1e-7) * (1 + math.cos(math.pi * 0.5)))
