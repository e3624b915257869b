"""Procedural mesh families: one parametric builder per class, seen and unseen.

``make_shape(category, rng)`` -> ``(mesh, face_roles)``: a ``trimesh.Trimesh`` in the ShapeNet v1
frame (y up, front +z, bbox centred at the origin, bbox diagonal 1, like ShapeNet v1 models) and an
int8 array (F,) of colour roles (0 primary, 1 accent, 2 dark) used by the renderer.  Everything
depends only on the generator's state, so a per-shape ``numpy.random.Generator`` seeded from
(seed, class, index) gives the same mesh on any machine, in any worker, in any order.

``shape_rng(seed, category, index)`` is that per-shape generator and ``model_id(seed, category,
index)`` the 32-hex ShapeNet-style model id (sha256 of the triple).  ``palette(rng)`` draws the
per-shape colours.
"""

from __future__ import annotations

import colorsys
import hashlib

import numpy as np
import trimesh

from mesc3d.categories import ALL_NAMES
from mesc3d.data.primitives import assemble, validate_mesh
from mesc3d.data.shapes_furniture import FURNITURE_BUILDERS
from mesc3d.data.shapes_seen import SEEN_BUILDERS
from mesc3d.data.shapes_unseen import UNSEEN_BUILDERS
from mesc3d.errors import ConfigError

BUILDERS = {**SEEN_BUILDERS, **FURNITURE_BUILDERS, **UNSEEN_BUILDERS}
assert set(BUILDERS) == set(ALL_NAMES), "every class of mesc3d.categories needs a builder"


def shape_rng(seed: int, category: str, index: int) -> np.random.Generator:
    """Independent generator per (seed, class, index); the class enters by its fixed position."""
    if category not in BUILDERS:
        raise ConfigError(f"unknown category {category!r}; known: {list(ALL_NAMES)}")
    return np.random.default_rng(np.random.SeedSequence([int(seed), ALL_NAMES.index(category), int(index)]))


def model_id(seed: int, category: str, index: int) -> str:
    """Deterministic 32-hex model id (the length of a ShapeNet v1 id)."""
    return hashlib.sha256(f"mesc3d-synth:{seed}:{category}:{index}".encode()).hexdigest()[:32]


def make_shape(category: str, rng: np.random.Generator) -> tuple[trimesh.Trimesh, np.ndarray]:
    """Build one mesh of ``category`` -> (mesh, face_roles (F,) int8); validated (finite, 3D bbox)."""
    if category not in BUILDERS:
        raise ConfigError(f"unknown category {category!r}; known: {list(ALL_NAMES)}")
    parts = BUILDERS[category](rng)
    mesh, roles = assemble(parts)
    validate_mesh(mesh, where=f"<generated {category}>")
    return mesh, roles


def palette(rng: np.random.Generator) -> np.ndarray:
    """Per-shape colours (3 roles x RGB in [0,1]): a primary hue, an accent, a dark tone."""
    h = rng.uniform()
    s = rng.uniform(0.25, 0.75)
    v = rng.uniform(0.55, 0.95)
    primary = colorsys.hsv_to_rgb(h, s, v)
    if rng.random() < 0.5:  # accent: the complementary-ish hue, or a lighter/darker shade
        accent = colorsys.hsv_to_rgb((h + rng.uniform(0.3, 0.7)) % 1.0, rng.uniform(0.2, 0.6), rng.uniform(0.5, 0.95))
    else:
        accent = colorsys.hsv_to_rgb(h, s * 0.5, min(1.0, v * rng.uniform(0.6, 1.3)))
    dark = (rng.uniform(0.12, 0.3),) * 3
    return np.array([primary, accent, dark], dtype=np.float64)
