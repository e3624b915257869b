"""Deterministic, headless figures: image | GT | prediction grids.

All functions build a ``matplotlib.figure.Figure`` on the Agg canvas (no pyplot state, no display,
no OpenGL) and return it; the caller saves it with ``save_figure`` (atomic, PNG metadata stripped so
equal inputs give byte-identical files).  3D views use fixed bounds ``[-bounds, bounds]^3`` and a
fixed elevation/azimuth, so predictions are comparable across runs and epochs.

Axis convention: our clouds are ShapeNet-style **y-up**; they are drawn with matplotlib's vertical
axis = y (plot axes x, z, y), coloured by height with a fixed colour range.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from mesc3d.errors import BadInputError
from mesc3d.io import atomic_path

ELEV, AZIM = 20.0, -50.0  # fixed camera of every 3D panel (degrees)
CMAP = "viridis"


def _points(points, name: str = "points") -> np.ndarray:
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3:
        raise ValueError(f"{name}: expected shape (N, 3), got {p.shape}")
    return p


def _image(image) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[0] in (3, 4) and img.shape[-1] not in (3, 4):
        img = np.transpose(img, (1, 2, 0))  # (3, H, W) -> (H, W, 3)
    if img.ndim != 3 or img.shape[-1] not in (3, 4):
        raise ValueError(f"image: expected shape (H, W, 3) float in [0, 1] (or (3, H, W)), got {img.shape}")
    if img.dtype == np.uint8:
        return img[..., :3]
    return np.clip(img[..., :3].astype(np.float64), 0.0, 1.0)


def _new_figure(width: float, height: float, dpi: int) -> Figure:
    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def draw_points(ax, points, bounds: float = 1.0, elev: float = ELEV, azim: float = AZIM,
                size: float = 2.0, title: str | None = None) -> None:
    """Scatter (N, 3) y-up points on a 3D axis with fixed bounds, camera and colour range."""
    p = _points(points)
    ax.scatter(p[:, 0], p[:, 2], p[:, 1], c=p[:, 1], cmap=CMAP, vmin=-bounds, vmax=bounds,
               s=size, linewidths=0, depthshade=False)
    ax.set_xlim(-bounds, bounds), ax.set_ylim(-bounds, bounds), ax.set_zlim(-bounds, bounds)
    ax.set_box_aspect((1, 1, 1), zoom=1.35)
    ax.view_init(elev=elev, azim=azim)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)


def plot_triplet_grid(rows, bounds: float = 1.0, elev: float = ELEV, azim: float = AZIM, size: float = 2.0,
                      dpi: int = 100) -> Figure:
    """Grid with one row per sample: input image | GT cloud | predicted cloud.

    ``rows``: list of ``(image (H, W, 3) float in [0,1], gt (G, 3), pred (N, 3), title)``.
    """
    rows = list(rows)
    if not rows:
        raise ValueError("plot_triplet_grid: rows is empty; expected [(image, gt, pred, title), ...]")
    fig = _new_figure(7.5, 2.5 * len(rows), dpi)
    for i, row in enumerate(rows):
        if len(row) != 4:
            raise ValueError(f"plot_triplet_grid: row {i} must be (image, gt, pred, title), got {len(row)} items")
        image, gt, pred, title = row
        ax = fig.add_subplot(len(rows), 3, 3 * i + 1)
        ax.imshow(_image(image), interpolation="nearest")
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_ylabel(str(title), fontsize=8)
        if i == 0:
            ax.set_title("input", fontsize=9)
        for j, (cloud, name) in enumerate(((gt, "ground truth"), (pred, "prediction"))):
            ax3 = fig.add_subplot(len(rows), 3, 3 * i + 2 + j, projection="3d")
            draw_points(ax3, _points(cloud, name), bounds, elev, azim, size, name if i == 0 else None)
    fig.subplots_adjust(left=0.05, right=0.98, top=0.95, bottom=0.02, wspace=0.05, hspace=0.08)
    return fig


def save_figure(fig: Figure, path: str | Path, dpi: int | None = None) -> Path:
    """Write ``fig`` as PNG atomically; metadata stripped so equal figures give equal bytes."""
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, metadata={"Software": None})
    return path


RECON_VIEWS = ((20.0, -50.0), (20.0, 40.0), (80.0, -90.0))  # (elev, azim) of the three cloud views


def plot_reconstructions(rows, views=RECON_VIEWS, size: float = 2.0, dpi: int = 80) -> Figure:
    """One row per photo: photo + box | mask overlay | the crop the model saw | cloud views.

    ``rows``: list of ``(photo (H, W, 3) uint8, mask (H, W) bool, box (x0, y0, x1, y1), crop (S, S, 3),
    points (N, 3), title)``.
    """
    from matplotlib.patches import Rectangle

    rows = list(rows)
    if not rows:
        raise ValueError("plot_reconstructions: rows is empty")
    cols = 3 + len(views)
    fig = _new_figure(2.2 * cols, 2.3 * len(rows), dpi)
    for i, (photo, mask, box, crop, points, title) in enumerate(rows):
        photo = np.asarray(photo)
        ax = fig.add_subplot(len(rows), cols, cols * i + 1)
        ax.imshow(photo, interpolation="nearest")
        x0, y0, x1, y1 = box
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor="yellow", linewidth=1.5))
        ax.set_ylabel(str(title), fontsize=8)
        over = photo.astype(np.float64) / 255.0
        over[np.asarray(mask)] = 0.45 * over[np.asarray(mask)] + 0.55 * np.array([1.0, 0.1, 0.1])
        ax2 = fig.add_subplot(len(rows), cols, cols * i + 2)
        ax2.imshow(over, interpolation="nearest")
        ax3 = fig.add_subplot(len(rows), cols, cols * i + 3)
        ax3.imshow(_image(crop), interpolation="nearest")
        for a, name in ((ax, "photo + box"), (ax2, "mask"), (ax3, "model input")):
            a.set_xticks([]), a.set_yticks([])
            if i == 0:
                a.set_title(name, fontsize=9)
        for j, (elev, azim) in enumerate(views):
            ax4 = fig.add_subplot(len(rows), cols, cols * i + 4 + j, projection="3d")
            draw_points(ax4, points, 1.0, elev, azim, size, f"cloud {j + 1}" if i == 0 else None)
    fig.subplots_adjust(left=0.04, right=0.99, top=0.93 if len(rows) == 1 else 0.97, bottom=0.02,
                        wspace=0.05, hspace=0.08)
    return fig


# ---- training curves ---------------------------------------------------------------------------
CURVE_METRIC = "cd_l1_x100"  # the validation metric of model selection (train.loss l1/l1+l2)


def training_curves(runs, results: str | Path = "results", metric: str = CURVE_METRIC, title: str = "",
                    dpi: int = 90) -> Figure:
    """Validation ``metric`` per epoch of every run of a table: one line per run (the mean over its
    seeds) and a band (min to max over the seeds) when it has several.

    ``runs``: ``[[label, [run of seed 0, seed 1, ...]], ...]``; each run's
    ``{results}/train/{run}/metrics.csv`` (``epoch,step,split,loss,cd_l1_x100,cd_l2_x1000,lr,seconds``,
    rows with ``split == "val"``) is read; a missing or malformed file is a ``BadInputError``.
    """
    import pandas as pd

    from mesc3d.metric_spec import METRIC_LABEL

    fig = _new_figure(7.0, 4.2, dpi)
    ax = fig.add_subplot(1, 1, 1)
    for label, names in runs:
        curves = []
        for name in names:
            path = Path(results) / "train" / name / "metrics.csv"
            try:
                df = pd.read_csv(path)
                val = df[df["split"] == "val"].groupby("epoch")[metric].last()  # (E,)
            except (OSError, KeyError, ValueError, pd.errors.ParserError) as err:
                raise BadInputError(path, f"not a training log with split/epoch/{metric} ({err})") from None
            curves.append(val)
        grid = pd.concat(curves, axis=1).sort_index()  # (E, n_seeds), NaN where a seed lacks an epoch
        mean = grid.mean(axis=1)
        line = ax.plot(grid.index, mean.values, marker="o", ms=2.5, lw=1.2,
                       label=f"{label} (n={len(names)})" if len(names) > 1 else label)[0]
        if len(names) > 1:
            ax.fill_between(grid.index, grid.min(axis=1).values, grid.max(axis=1).values,
                            color=line.get_color(), alpha=0.2, lw=0)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"val {METRIC_LABEL.get(metric, metric)}")
    ax.set_title(f"Training curves: {title}" if title else "Training curves", fontsize=10)
    ax.grid(alpha=0.3)
    if runs:
        ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig
