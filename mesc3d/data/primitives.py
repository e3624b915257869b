"""Mesh primitives for the procedural benchmark: boxes, frusta, ellipsoids, convex hulls.

Each primitive is a ``Part`` (vertices (n, 3) float64, faces (m, 3) int64, role int).  ``role``
selects the colour at render time (0 = primary colour of the shape, 1 = accent, 2 = dark, e.g.
tyres, screens, glass).  Parts are built with plain numpy (no trimesh processing), so generation is
fast and bit-for-bit deterministic; ``assemble`` concatenates them into one ``trimesh.Trimesh``,
centres its bounding box at the origin and scales the bbox diagonal to 1 (the ShapeNet v1 frame:
y up, the object's front facing +z).

Triangle winding is not guaranteed consistent (convex hulls come from qhull); the renderer shades
two-sided, and surface sampling does not depend on winding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh
from scipy.spatial import ConvexHull

from mesc3d.errors import BadInputError

# role ids used by the renderer's palette
PRIMARY, ACCENT, DARK = 0, 1, 2


@dataclass
class Part:
    vertices: np.ndarray  # (n, 3) float64
    faces: np.ndarray  # (m, 3) int64
    role: int = PRIMARY

    def moved(self, offset) -> "Part":
        return Part(self.vertices + np.asarray(offset, dtype=np.float64), self.faces, self.role)

    def rotated(self, matrix, about=(0.0, 0.0, 0.0)) -> "Part":
        about = np.asarray(about, dtype=np.float64)
        return Part((self.vertices - about) @ np.asarray(matrix).T + about, self.faces, self.role)

    def scaled(self, factors) -> "Part":
        return Part(self.vertices * np.asarray(factors, dtype=np.float64), self.faces, self.role)

    def with_role(self, role: int) -> "Part":
        return Part(self.vertices, self.faces, role)


def rot(axis: str, angle: float) -> np.ndarray:
    """3x3 rotation matrix about the x, y or z axis (radians, right-handed)."""
    c, s = np.cos(angle), np.sin(angle)
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    if axis == "z":
        return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    raise ValueError(f"axis must be x, y or z, got {axis!r}")


_BOX_FACES = np.array(
    [[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
     [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]], dtype=np.int64)


def box(size, center=(0.0, 0.0, 0.0), role: int = PRIMARY) -> Part:
    """Axis-aligned box of extents ``size`` (sx, sy, sz) centred at ``center``."""
    size = np.abs(np.asarray(size, dtype=np.float64))
    corners = np.array([[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)])
    return Part(corners * size + np.asarray(center, dtype=np.float64), _BOX_FACES.copy(), role)


def frustum(r0: float, r1: float, height: float, center=(0.0, 0.0, 0.0), axis: str = "y",
            sections: int = 16, role: int = PRIMARY, rx_scale: float = 1.0) -> Part:
    """Capped truncated cone along ``axis``: radius ``r0`` at the low end, ``r1`` at the high end.

    ``r0 == r1`` gives a cylinder; ``r1 == 0`` a cone (apex kept as a ring of coincident points is
    avoided by clamping to a tiny radius).  ``rx_scale`` squashes the cross-section (ellipses).
    """
    r1 = max(r1, 1e-4 * max(r0, 1e-3))
    t = np.linspace(0.0, 2 * np.pi, sections, endpoint=False)
    ring = np.stack([np.cos(t) * rx_scale, np.sin(t)], axis=1)  # (S, 2)
    lo = np.column_stack([ring * r0, np.full(sections, -height / 2)])
    hi = np.column_stack([ring * r1, np.full(sections, height / 2)])
    verts = np.vstack([lo, hi, [[0, 0, -height / 2]], [[0, 0, height / 2]]])  # local axis = z
    i = np.arange(sections)
    j = (i + 1) % sections
    side = np.concatenate([np.stack([i, j, sections + j], 1), np.stack([i, sections + j, sections + i], 1)])
    c0, c1 = 2 * sections, 2 * sections + 1
    caps = np.concatenate([np.stack([np.full(sections, c0), j, i], 1),
                           np.stack([np.full(sections, c1), sections + i, sections + j], 1)])
    faces = np.concatenate([side, caps]).astype(np.int64)
    # local z -> requested axis
    if axis == "y":
        verts = verts[:, [0, 2, 1]] * np.array([1.0, 1.0, -1.0])
    elif axis == "x":
        verts = verts[:, [2, 1, 0]] * np.array([1.0, 1.0, -1.0])
    elif axis != "z":
        raise ValueError(f"axis must be x, y or z, got {axis!r}")
    return Part(verts + np.asarray(center, dtype=np.float64), faces, role)


def cylinder(r: float, height: float, center=(0.0, 0.0, 0.0), axis: str = "y", sections: int = 16,
             role: int = PRIMARY) -> Part:
    return frustum(r, r, height, center, axis, sections, role)


def ellipsoid(radii, center=(0.0, 0.0, 0.0), n_lat: int = 8, n_lon: int = 14, role: int = PRIMARY) -> Part:
    """UV ellipsoid with semi-axes ``radii`` (rx, ry, rz)."""
    lat = np.linspace(0.0, np.pi, n_lat + 1)[1:-1]  # interior rings
    lon = np.linspace(0.0, 2 * np.pi, n_lon, endpoint=False)
    la, lo = np.meshgrid(lat, lon, indexing="ij")  # (R, L)
    ring = np.stack([np.sin(la) * np.cos(lo), np.cos(la), np.sin(la) * np.sin(lo)], -1).reshape(-1, 3)
    verts = np.vstack([[[0, 1, 0]], ring, [[0, -1, 0]]]) * np.asarray(radii, dtype=np.float64)
    n_r = len(lat)
    faces = []
    j = (np.arange(n_lon) + 1) % n_lon
    i = np.arange(n_lon)
    faces.append(np.stack([np.zeros(n_lon, int), 1 + j, 1 + i], 1))
    for r in range(n_r - 1):
        a, b = 1 + r * n_lon, 1 + (r + 1) * n_lon
        faces.append(np.stack([a + i, a + j, b + j], 1))
        faces.append(np.stack([a + i, b + j, b + i], 1))
    last = len(verts) - 1
    a = 1 + (n_r - 1) * n_lon
    faces.append(np.stack([np.full(n_lon, last), a + i, a + j], 1))
    return Part(verts + np.asarray(center, dtype=np.float64), np.concatenate(faces).astype(np.int64), role)


def hull(points, role: int = PRIMARY) -> Part:
    """Convex hull of ``points`` (n, 3) (n >= 4, not coplanar)."""
    points = np.asarray(points, dtype=np.float64)
    h = ConvexHull(points)
    used = np.unique(h.simplices)
    remap = np.full(len(points), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    return Part(points[used], remap[h.simplices].astype(np.int64), role)


def prism(outline_xz, y0: float, y1: float, role: int = PRIMARY) -> Part:
    """Convex prism: a convex 2D outline in the x-z plane extruded from ``y0`` to ``y1``."""
    o = np.asarray(outline_xz, dtype=np.float64)
    lo = np.column_stack([o[:, 0], np.full(len(o), y0), o[:, 1]])
    hi = np.column_stack([o[:, 0], np.full(len(o), y1), o[:, 1]])
    return hull(np.vstack([lo, hi]), role)


def bar(p0, p1, thickness: float, role: int = PRIMARY, sections: int = 8) -> Part:
    """Cylinder of diameter ``thickness`` from point ``p0`` to ``p1`` (any direction)."""
    p0, p1 = np.asarray(p0, dtype=np.float64), np.asarray(p1, dtype=np.float64)
    d = p1 - p0
    length = float(np.linalg.norm(d))
    part = frustum(thickness / 2, thickness / 2, length, axis="z", sections=sections, role=role)
    z = d / max(length, 1e-12)
    helper = np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return Part(part.vertices @ np.stack([x, y, z]) + (p0 + p1) / 2, part.faces, role)


def mirror_x(parts: list[Part]) -> list[Part]:
    """Copies of ``parts`` mirrored through the x = 0 plane (for left/right symmetric pieces)."""
    return [Part(p.vertices * np.array([-1.0, 1.0, 1.0]), p.faces[:, ::-1].copy(), p.role) for p in parts]


def assemble(parts: list[Part], normalize: bool = True) -> tuple[trimesh.Trimesh, np.ndarray]:
    """Concatenate parts -> (mesh, face_roles (F,) int8); bbox centred, diagonal scaled to 1."""
    if not parts:
        raise ValueError("assemble needs at least one part")
    verts, faces, roles, offset = [], [], [], 0
    for p in parts:
        verts.append(p.vertices)
        faces.append(p.faces + offset)
        roles.append(np.full(len(p.faces), p.role, dtype=np.int8))
        offset += len(p.vertices)
    v = np.concatenate(verts)
    if normalize:
        lo, hi = v.min(0), v.max(0)
        v = (v - (lo + hi) / 2) / np.linalg.norm(hi - lo)
    mesh = trimesh.Trimesh(vertices=v, faces=np.concatenate(faces), process=False, validate=False)
    return mesh, np.concatenate(roles)


def validate_mesh(mesh: trimesh.Trimesh, where: str = "mesh") -> None:
    """Raise ``BadInputError(where, ...)`` unless the mesh has faces, finite vertices and a 3D bbox."""
    v = np.asarray(mesh.vertices)
    f = np.asarray(mesh.faces)
    if f.ndim != 2 or len(f) == 0:
        raise BadInputError(where, "mesh has no faces")
    if v.ndim != 2 or v.shape[1] != 3 or len(v) == 0:
        raise BadInputError(where, f"mesh vertices must be (n, 3), got {v.shape}")
    if not np.isfinite(v).all():
        raise BadInputError(where, "mesh has non-finite vertex coordinates")
    if f.min() < 0 or f.max() >= len(v):
        raise BadInputError(where, "mesh faces index missing vertices")
    ext = v[np.unique(f)].max(0) - v[np.unique(f)].min(0)
    if not (ext > 1e-9).all():
        raise BadInputError(where, f"mesh bounding box is degenerate (extents {ext.tolist()})")
    areas = np.asarray(mesh.area_faces)
    if not np.isfinite(areas).all() or areas.sum() <= 0:
        raise BadInputError(where, "mesh has zero surface area")
