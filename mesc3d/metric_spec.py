"""The metric spec: every table metric's column, scale, F-score convention, label, format and
better direction, and the conventions text the tables print, stated once.

Conventions (MESC-3D's ``cdloss.py``; d1 = squared NN distance GT -> prediction, one per GT point,
d2 = squared NN distance prediction -> GT, one per predicted point):

- CD-L1 = ½ (mean √d1 + mean √d2), reported ×100 (column ``cd_l1_x100``; paper Tab. 1);
- CD-L2 = mean d1 + mean d2 (a sum, not halved), reported ×1000 (column ``cd_l2_x1000``; Tab. 3-8);
- F-score: P = fraction of GT points whose NN distance to the prediction is < threshold, R the same
  with the roles swapped, F = 2PR/(P+R) (0 when P = R = 0).  ``fscore`` compares SQUARED distances
  with ``eval.fscore_threshold`` (0.01 = Euclidean 0.1, the paper's), ``fscore_euclid`` Euclidean
  distances with ``eval.fscore_euclidean_threshold`` (0.01, 3DAttriFlow/VRCNet's).  Strict ``<``.

Who reads it: ``mesc3d.metrics.table_metrics`` (scales, which distance each F-score compares),
``mesc3d.engine.validation`` (the training curves' scales), the tables (labels, formats, better
direction, ``CONVENTION`` / ``CONVENTION_TEX``).  Switching a convention is an edit here: e.g.
``FSCORE = FScore(..., squared=False)`` makes the ``fscore`` column and every table caption Euclidean.

A leaf module: plain Python, no mesc3d import, no torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    column: str  # CSV column of per_shape.csv / per_category.csv / metrics.csv
    label: str  # table header (arrow = better direction)
    fmt: str  # table cell format
    better: str  # "min" | "max"
    scale: float = 1.0  # the raw value is multiplied by this before it is written


@dataclass(frozen=True)
class FScore(Metric):
    squared: bool = True  # compare squared NN distances (True) or Euclidean ones (False) with threshold
    threshold: float = 0.01  # default of the config key below (the config value is what is used)
    threshold_key: str = "eval.fscore_threshold"


CD_L1 = Metric("cd_l1_x100", "CD-L1 ×100 ↓", "{:.2f}", "min", scale=100.0)
CD_L2 = Metric("cd_l2_x1000", "CD-L2 ×1000 ↓", "{:.2f}", "min", scale=1000.0)
FSCORE = FScore("fscore", "F-score ↑", "{:.3f}", "max", squared=True, threshold=0.01,
                threshold_key="eval.fscore_threshold")
FSCORE_EUCLID = FScore("fscore_euclid", "F-score (Euclidean) ↑", "{:.3f}", "max", squared=False, threshold=0.01,
                       threshold_key="eval.fscore_euclidean_threshold")

METRICS: dict[str, Metric] = {m.column: m for m in (CD_L1, CD_L2, FSCORE, FSCORE_EUCLID)}
METRIC_COLUMNS: tuple[str, ...] = tuple(METRICS)  # the per-shape / per-category metric columns, in order


def fscores() -> tuple[FScore, FScore]:
    """The two F-score columns as the spec states them now (read at call time, so a test can switch one)."""
    return FSCORE, FSCORE_EUCLID


# the tables' views of the spec (column -> value)
METRIC_LABEL: dict[str, str] = {c: m.label for c, m in METRICS.items()}
FMT: dict[str, str] = {c: m.fmt for c, m in METRICS.items()}
BETTER: dict[str, str] = {c: m.better for c, m in METRICS.items()}

CD_L1_SCALE = CD_L1.scale
CD_L2_SCALE = CD_L2.scale
FSCORE_THRESHOLD = FSCORE.threshold
FSCORE_EUCLID_THRESHOLD = FSCORE_EUCLID.threshold


def _num(x: float) -> str:
    return f"{x:g}"


def fscore_phrase(m: FScore = FSCORE, tex: bool = False) -> str:
    """"F-score with threshold 0.01 on squared NN distances (= Euclidean 0.1, 10% of the unit-ball radius)"."""
    t = f"${_num(m.threshold)}$" if tex else _num(m.threshold)
    pct = r"\%" if tex else "%"
    if m.squared:
        e = math.sqrt(m.threshold)
        eq = f"$={_num(e)}$ Euclidean" if tex else f"= Euclidean {_num(e)}"
        return f"F-score with threshold {t} on squared NN distances ({eq}, {_num(100 * e)}{pct} of the unit-ball radius)"
    return f"F-score with threshold {t} on Euclidean NN distances ({_num(100 * m.threshold)}{pct} of the unit-ball radius)"


def convention(tex: bool = False, fscore: FScore | None = None) -> str:
    """The one-sentence metric conventions every table caption ends with (plain text or LaTeX)."""
    f = fscore_phrase(fscore or FSCORE, tex)
    if tex:
        l1, l2 = (f"10^{{{round(math.log10(m.scale))}}}" for m in (CD_L1, CD_L2))
        return (r"Metrics: CD-L1 $=\frac{1}{2}(\mathrm{mean}_{g}\min_{p}\|g-p\| + \mathrm{mean}_{p}\min_{g}\|p-g\|)"
                rf"\times {l1}$; CD-L2 $=(\mathrm{{mean}}_{{g}}\min_{{p}}\|g-p\|^{{2}} + "
                rf"\mathrm{{mean}}_{{p}}\min_{{g}}\|p-g\|^{{2}})\times {l2}$; {f}; Mean $=$ unweighted mean over "
                "the categories shown.")
    return (f"Metrics: CD-L1 = ½(mean_gt min‖g-p‖ + mean_pred min‖p-g‖) ×{_num(CD_L1.scale)}; CD-L2 = "
            f"(mean_gt min‖g-p‖² + mean_pred min‖p-g‖²) ×{_num(CD_L2.scale)}; {f}; "
            "Mean = unweighted mean over the categories shown.")


CONVENTION = convention()
CONVENTION_TEX = convention(tex=True)
