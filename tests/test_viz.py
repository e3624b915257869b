"""mesc3d.viz: deterministic headless figures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mesc3d.errors import BadInputError
from mesc3d.viz import plot_triplet_grid, save_figure


def _rows(n=2, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        gt = rng.normal(size=(256, 3)) * 0.3
        out.append((rng.uniform(size=(32, 32, 3)).astype(np.float32), gt, gt + 0.05, f"chair {i}"))
    return out


def test_triplet_grid_is_byte_deterministic(tmp_path):
    paths = [save_figure(plot_triplet_grid(_rows()), tmp_path / f"grid{k}.png") for k in range(2)]
    a, b = (p.read_bytes() for p in paths)
    assert a[:8] == b"\x89PNG\r\n\x1a\n" and a == b
    assert b"Software" not in a and b"matplotlib" not in a  # metadata stripped
    assert not list(tmp_path.glob(".*tmp*"))  # atomic: no temp files left
    fig = plot_triplet_grid(_rows(3))
    assert len(fig.axes) == 9
    # fixed bounds and camera on every 3D panel
    for ax in fig.axes[1::3] + fig.axes[2::3]:
        assert ax.get_xlim() == pytest.approx((-1.0, 1.0)) and ax.get_zlim() == pytest.approx((-1.0, 1.0))
        assert (ax.elev, ax.azim) == (20.0, -50.0)
    # different prediction -> different bytes
    rows = _rows()
    rows[0] = (rows[0][0], rows[0][1], rows[0][2] + 0.3, rows[0][3])
    c = save_figure(plot_triplet_grid(rows), tmp_path / "grid_c.png").read_bytes()
    assert c != a


def test_triplet_grid_validates_inputs():
    img, gt, pred, title = _rows(1)[0]
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        plot_triplet_grid([(img, gt[:, :2], pred, title)])
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        plot_triplet_grid([(img[..., 0], gt, pred, title)])
    with pytest.raises(ValueError, match="empty"):
        plot_triplet_grid([])
    fig = plot_triplet_grid([(np.transpose(img, (2, 0, 1)), gt, pred, title)], bounds=0.5)  # (3, H, W) accepted
    assert fig.axes[1].get_xlim() == pytest.approx((-0.5, 0.5))
