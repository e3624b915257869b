"""Confidence intervals of differences between two arms (the ``claims`` table; docs/design.md,
"Seeds and claims").

The quantity is the paper's: the **unweighted mean over classes** of a per-shape metric, arm A minus
arm B, averaged over the seeds.  Both arms are evaluated on the same test shapes, and seed k of A is
paired with seed k of B (same seed, same data order).  Its uncertainty has two parts:

- **test shapes** (which shapes the test split happens to hold): a paired bootstrap over shapes,
  resampled *within each class* so every class keeps its weight 1/C in the mean.  The statistic is
  linear, so resampling the seed-averaged per-shape difference d_i = mean_k (A_ki - B_ki) is the same
  as resampling the shapes of every seed of both arms together.  ``n_boot`` resamples from a fixed
  generator seed: the interval is deterministic.  V_shapes = variance of the resampled effects.
- **seeds** (training randomness): the per-seed effects D_k have a sample variance s^2; the seed part
  of the effect's variance is s^2 / K.

Interval: effect ± t_q(nu) * sqrt(s^2 / K + V_shapes), nu from Welch-Satterthwaite with the bootstrap
part taken as known (nu = (K - 1) * (1 + V_shapes K / s^2)^2): a t-interval over seeds when the seed
spread dominates, a normal bootstrap interval when the shapes dominate.  With K = 1 the seed part is
not estimable: the interval is the shape part alone (``seed_part`` NaN says so).

Leaf module: numpy (and scipy's t quantile), nothing from mesc3d.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

N_BOOT = 2000
BOOT_SEED = 20250611  # fixed: the interval is a pure function of the inputs
LEVEL = 0.95
VERDICTS = ("holds", "reversed", "inconclusive")


@dataclass(frozen=True)
class Effect:
    effect: float  # mean over seeds of (class mean of A - class mean of B)
    ci_low: float
    ci_high: float
    mean_a: float  # mean over seeds of A's class mean
    mean_b: float
    n_seeds: int
    n_shapes: int
    n_classes: int
    seed_part: float  # s^2 / K (NaN with one seed)
    shape_part: float  # V_shapes
    dof: float  # degrees of freedom of the t quantile (inf: normal)


def class_means(values: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """(K, S) per-shape values -> (K,) unweighted means over the classes of the per-class means."""
    values = np.atleast_2d(np.asarray(values, dtype=np.float64))
    names = np.unique(classes)
    return np.mean([values[:, classes == c].mean(axis=1) for c in names], axis=0)


def stratified_boot(d: np.ndarray, classes: np.ndarray, n_boot: int = N_BOOT, seed: int = BOOT_SEED) -> np.ndarray:
    """(S,) per-shape values -> (n_boot,) class means of within-class resamples (with replacement)."""
    rng = np.random.default_rng(seed)
    per_class = []
    for c in np.unique(classes):  # sorted: the draw order is fixed
        vals = d[classes == c]  # (n_c,)
        draws = rng.integers(0, len(vals), size=(n_boot, len(vals)))  # (B, n_c)
        per_class.append(vals[draws].mean(axis=1))
    return np.mean(per_class, axis=0)  # (B,)


def t_quantile(q: float, dof: float) -> float:
    from scipy.special import ndtri, stdtrit

    return float(ndtri(q)) if math.isinf(dof) else float(stdtrit(dof, q))


def paired_difference(a, b, classes, n_boot: int = N_BOOT, seed: int = BOOT_SEED, level: float = LEVEL) -> Effect:
    """Effect of arm A over arm B with its ``level`` interval (module docstring).

    a, b: (K, S) per-shape metric, seed k of A paired with seed k of B, shape i the same test shape
    in every row; classes: (S,) class of each shape.
    """
    a = np.atleast_2d(np.asarray(a, dtype=np.float64))
    b = np.atleast_2d(np.asarray(b, dtype=np.float64))
    classes = np.asarray(classes).astype(str)
    if a.shape != b.shape or a.shape[1] != len(classes) or a.size == 0:
        raise ValueError(f"arms need equal (K, S) shapes and S classes: A {a.shape}, B {b.shape}, "
                         f"classes ({len(classes)},)")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("per-shape values must be finite")
    k = a.shape[0]
    per_seed = class_means(a, classes) - class_means(b, classes)  # (K,)
    effect = float(per_seed.mean())
    boot = stratified_boot((a - b).mean(axis=0), classes, n_boot, seed)
    shape_part = float(np.var(boot, ddof=1)) if n_boot > 1 else 0.0
    if k >= 2:
        seed_part = float(np.var(per_seed, ddof=1)) / k
        dof = math.inf if seed_part == 0 else (k - 1) * (1 + shape_part / seed_part) ** 2
    else:
        seed_part, dof = math.nan, math.inf
    half = t_quantile(0.5 + level / 2, dof) * math.sqrt(shape_part + (0.0 if k < 2 else seed_part))
    return Effect(effect, effect - half, effect + half, float(class_means(a, classes).mean()),
                  float(class_means(b, classes).mean()), k, a.shape[1], len(np.unique(classes)),
                  seed_part, shape_part, dof)


def verdict(ci_low: float, ci_high: float, better: str) -> str:
    """``holds`` when the interval excludes 0 on the side where A is better (``better``: "min" = lower
    is better, "max" = higher is better), ``reversed`` on the other side, else ``inconclusive``."""
    if math.isnan(ci_low) or math.isnan(ci_high):
        return "inconclusive"
    a_better = ci_high < 0 if better == "min" else ci_low > 0
    b_better = ci_low > 0 if better == "min" else ci_high < 0
    return "holds" if a_better else "reversed" if b_better else "inconclusive"
