"""Point sampling: area-weighted surface samples, unit-ball normalisation, fixed per-shape subsets.

- ``sample_surface(vertices, faces, n, rng)``: n points, triangle chosen with probability
  proportional to its area, then a uniform point in it (the sqrt-of-uniform barycentric trick).
  ``sample_surface_naive`` is the loop twin (one point at a time, same distribution).
- ``normalize_unit_ball(points)``: subtract the centroid (mean), divide by the max norm, so the
  farthest point lies exactly on the unit sphere (3DAttriFlow/MESC-3D "UnitBall").
- ``fixed_subset(points, k, key)``: ``k`` rows chosen by a generator seeded from sha256(key) (the
  shape id), so the evaluation GT of a shape is the same in every run, process and machine; without
  replacement when there are enough points, with replacement otherwise (if allowed).
- ``gt_points(dense, k, key)``: the GT rule used by ``mesc3d prepare``: subset, then normalise.
"""

from __future__ import annotations

import hashlib

import numpy as np

from mesc3d.errors import BadInputError


def _check_mesh_arrays(vertices: np.ndarray, faces: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    if v.ndim != 2 or v.shape[1] != 3:
        raise BadInputError(where, f"vertices must be (V, 3), got {v.shape}")
    if f.ndim != 2 or f.shape[1] != 3 or len(f) == 0:
        raise BadInputError(where, f"mesh has no faces (faces must be (F, 3), F > 0; got {f.shape})")
    if not np.isfinite(v).all():
        raise BadInputError(where, "mesh has non-finite vertex coordinates")
    if f.min() < 0 or f.max() >= len(v):
        raise BadInputError(where, "faces index vertices that do not exist")
    return v, f


def triangle_areas(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    """(F,) areas of triangles ``f`` (F, 3) over vertices ``v`` (V, 3)."""
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    return 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)


def sample_surface(vertices, faces, n: int, rng: np.random.Generator, where: str = "mesh") -> np.ndarray:
    """Area-weighted uniform samples on the surface -> float64 (n, 3)."""
    v, f = _check_mesh_arrays(vertices, faces, where)
    areas = triangle_areas(v, f)
    total = areas.sum()
    if not np.isfinite(total) or total <= 0:
        raise BadInputError(where, "mesh has zero surface area")
    cdf = np.cumsum(areas) / total
    idx = np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), len(f) - 1)  # (n,)
    r1 = np.sqrt(rng.random(n))[:, None]
    r2 = rng.random(n)[:, None]
    a, b, c = v[f[idx, 0]], v[f[idx, 1]], v[f[idx, 2]]
    return (1 - r1) * a + r1 * (1 - r2) * b + r1 * r2 * c


def sample_surface_naive(vertices, faces, n: int, rng: np.random.Generator, where: str = "mesh") -> np.ndarray:
    """Loop twin of ``sample_surface``: same random stream layout is NOT kept, only the distribution."""
    v, f = _check_mesh_arrays(vertices, faces, where)
    areas = [0.5 * float(np.linalg.norm(np.cross(v[j] - v[i], v[k] - v[i]))) for i, j, k in f]
    total = sum(areas)
    if total <= 0:
        raise BadInputError(where, "mesh has zero surface area")
    out = np.empty((n, 3))
    for s in range(n):
        target, acc, t = rng.random() * total, 0.0, 0
        for t, area in enumerate(areas):
            acc += area
            if acc > target:
                break
        r1, r2 = np.sqrt(rng.random()), rng.random()
        i, j, k = f[t]
        out[s] = (1 - r1) * v[i] + r1 * (1 - r2) * v[j] + r1 * r2 * v[k]
    return out


def normalize_unit_ball(points: np.ndarray) -> np.ndarray:
    """(N, 3) -> (N, 3) float32: centroid (mean) at the origin, max norm exactly 1."""
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3 or len(p) == 0:
        raise ValueError(f"normalize_unit_ball expects (N, 3) points with N > 0, got {p.shape}")
    p = p - p.mean(axis=0)
    scale = np.sqrt((p * p).sum(axis=1)).max()
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError("normalize_unit_ball: points are all identical or non-finite")
    return (p / scale).astype(np.float32)


def normalize_unit_ball_naive(points: np.ndarray) -> np.ndarray:
    p = [list(map(float, row)) for row in np.asarray(points)]
    c = [sum(r[i] for r in p) / len(p) for i in range(3)]
    q = [[r[i] - c[i] for i in range(3)] for r in p]
    s = max((x * x + y * y + z * z) ** 0.5 for x, y, z in q)
    return np.array([[x / s for x in r] for r in q], dtype=np.float32)


def seed_from_key(key: str, salt: str = "mesc3d-gt") -> int:
    """Stable 63-bit seed from a string (sha256), independent of PYTHONHASHSEED and platform."""
    return int.from_bytes(hashlib.sha256(f"{salt}:{key}".encode()).digest()[:8], "little") >> 1


def fixed_subset(points: np.ndarray, k: int, key: str, allow_replace: bool = True,
                 where: str = "points") -> np.ndarray:
    """``k`` rows of ``points`` (N, C), chosen by a generator seeded from ``key`` only."""
    n = len(points)
    if n == 0:
        raise BadInputError(where, "no points to sample from")
    rng = np.random.default_rng(seed_from_key(key))
    if n >= k:
        idx = np.sort(rng.choice(n, size=k, replace=False))
    elif allow_replace:
        idx = np.sort(rng.choice(n, size=k, replace=True))
    else:
        raise BadInputError(where, f"has {n} points, fewer than the {k} requested")
    return points[idx]


def gt_points(dense: np.ndarray, k: int, key: str, where: str = "points") -> np.ndarray:
    """Evaluation/training GT: fixed subset of ``k`` dense points, then unit-ball -> float32 (k, 3)."""
    dense = np.asarray(dense)
    if dense.ndim != 2 or dense.shape[1] < 3:
        raise BadInputError(where, f"points must be (K, 3) or (K, 6), got {dense.shape}")
    xyz = dense[:, :3].astype(np.float64)
    if not np.isfinite(xyz).all():
        raise BadInputError(where, "points contain non-finite values")
    sub = fixed_subset(xyz, k, key, where=where)
    if np.ptp(sub, axis=0).max() <= 0:
        raise BadInputError(where, "points are all identical")
    return normalize_unit_ball(sub)
