"""``data.source: meshes``: a folder of meshes, one subfolder per class, as a benchmark.

Input (``data.root`` R; the classes are ``data.categories``, by default every subfolder)::

    R/<class>/<name>.{obj,ply,off,stl,glb,gltf}    any mesh trimesh reads (y up, like ShapeNet)

Other files (materials, textures, notes) are ignored.  Each usable mesh is normalised like a
ShapeNet v1 model (bounding box centred at the origin, diagonal 1), rendered with our renderer
(``mesc3d.data.render``: 24 R2N2 cameras, 137x137 RGBA, one colour per shape) and sampled into a
dense cloud (``DENSE_POINTS`` area-weighted surface samples, ``mesc3d.data.sampling``).  Cameras,
colour and samples are seeded by ``<class>/<file name>`` only, so the same folder gives the same
files on every machine.  The result is written in the R2N2 layout, the class name in place of the
synset, under ``<prepared>/renders/`` (built in ``renders.partial`` and swapped in whole)::

    renders/ShapeNetV1PointCloud/<class>/<id>.points.ply.npy
    renders/ShapeNetV1Renderings/<class>/<id>/rendering/00.png .. 23.png, rendering_metadata.txt

and from there prepared exactly like ShapeNet (``mesc3d.data.splits.layout_arrays``: the same
validation, ShapeNet split rule per class, GT = fixed subset then unit ball).  ``<id>`` is the file
name with characters outside ``[A-Za-z0-9_-]`` replaced by ``_`` (``chair/Arm Chair.obj`` ->
``Arm_Chair_obj``); a clash inside a class gets a hash of the original name appended.

Bad meshes -- unreadable (trimesh fails or finds no geometry), empty (0 bytes, or no faces),
non-finite vertices, degenerate (zero surface area or a flat bounding box diagonal) -- are skipped
with one log line each and counted in ``summary.json`` (``source.skipped``).  A class with fewer than
``MIN_PER_CLASS`` usable meshes (at least one train and one test shape) stops prepare with one line
naming the class and its counts, before anything is rendered.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import shutil
from functools import partial
from pathlib import Path

import numpy as np

from mesc3d.data import shapenet
from mesc3d.data.sampling import seed_from_key, triangle_areas
from mesc3d.data.splits import layout_arrays, map_items
from mesc3d.errors import BadInputError

log = logging.getLogger("mesc3d.prepare")

MESH_SUFFIXES = (".obj", ".ply", ".off", ".stl", ".glb", ".gltf")
MIN_PER_CLASS = 3  # ShapeNet split rule: 3 meshes give 2 train / 0 val / 1 test
DENSE_POINTS = 10000  # surface samples per mesh (the embedded benchmark's default)
RENDER_SIZE = 137  # R2N2 renders
RENDER_DIR = "renders"
REASONS = ("unreadable", "empty", "non_finite", "degenerate")


class BadMesh(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


def class_files(root: str | Path, categories) -> dict[str, list[Path]]:
    """{class: sorted mesh files of R/<class>/} (files with a mesh suffix, not hidden)."""
    root = Path(root)
    out = {}
    for cat in categories:
        folder = root / cat
        if not folder.is_dir():
            raise BadInputError(folder, f"class {cat!r} of data.categories has no folder under data.root")
        out[cat] = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                          and p.suffix.lower() in MESH_SUFFIXES)
    return out


def model_ids(files: list[Path]) -> list[str]:
    """Path-safe, unique ids of one class's files (see the module docstring)."""
    ids = [re.sub(r"[^A-Za-z0-9_-]", "_", p.name) for p in files]
    counts = {i: ids.count(i) for i in ids}
    return [i if counts[i] == 1 else f"{i}-{hashlib.sha256(p.name.encode()).hexdigest()[:8]}"
            for i, p in zip(ids, files)]


def load_mesh(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices float64 (V, 3) centred (bbox) with bbox diagonal 1, faces int64 (F, 3) of positive area.

    Raises ``BadMesh`` with the reason (one of ``REASONS``) and a short detail.
    """
    import trimesh

    path = Path(path)
    if path.stat().st_size == 0:
        raise BadMesh("empty", "file has 0 bytes")
    try:
        mesh = trimesh.load(path, force="mesh", process=False)
    except Exception as err:  # every loader error is the same verdict: skip the file
        raise BadMesh("unreadable", f"trimesh cannot read it ({type(err).__name__}: {str(err)[:120]})") from None
    v = np.asarray(getattr(mesh, "vertices", np.zeros((0, 3))), dtype=np.float64).reshape(-1, 3)
    f = np.asarray(getattr(mesh, "faces", np.zeros((0, 3))), dtype=np.int64)
    if len(v) == 0 and len(f) == 0:
        raise BadMesh("unreadable", "no geometry found in the file")
    if f.ndim != 2 or f.shape[-1] != 3 or len(f) == 0:
        raise BadMesh("empty", f"no triangle faces ({len(v)} vertices)")
    if f.min() < 0 or f.max() >= len(v):
        raise BadMesh("unreadable", "faces index vertices that do not exist")
    if not np.isfinite(v).all():
        raise BadMesh("non_finite", f"{int((~np.isfinite(v)).any(axis=1).sum())} vertices are NaN or infinite")
    lo, hi = v[f].reshape(-1, 3).min(axis=0), v[f].reshape(-1, 3).max(axis=0)
    diag = float(np.linalg.norm(hi - lo))
    if not np.isfinite(diag) or diag <= 0:
        raise BadMesh("degenerate", "all faces collapse to one point")
    v = (v - (lo + hi) / 2) / diag  # ShapeNet v1 convention: bbox centred, diagonal 1
    f = f[triangle_areas(v, f) > 1e-12]
    if len(f) == 0:
        raise BadMesh("degenerate", "zero surface area")
    return v, f


def _check(path: Path) -> str | None:
    """None if ``path`` is a usable mesh, else 'reason: detail'."""
    try:
        load_mesh(path)
    except BadMesh as bad:
        return f"{bad.reason}: {bad}"
    return None


def _render(job: tuple, tmp: str, n_views: int) -> None:
    """Render and sample one mesh into the R2N2 layout under ``tmp``."""
    import trimesh

    from mesc3d.data.render import metadata_text, r2n2_cameras, render_views
    from mesc3d.data.sampling import sample_surface
    from mesc3d.data.shapes import palette
    from mesc3d.data.synthetic import png_bytes

    cat, mid, path = job
    v, f = load_mesh(path)
    mesh = trimesh.Trimesh(vertices=v, faces=f, process=False)
    rng = np.random.default_rng(seed_from_key(f"{cat}/{Path(path).name}", salt="mesc3d-meshes"))
    cams = r2n2_cameras(rng, n_views)
    colors = palette(rng)
    views = render_views(mesh, np.zeros(len(f), dtype=np.int64), colors, cams, size=RENDER_SIZE)  # (V, S, S, 4)
    rdir = Path(tmp) / shapenet.RENDER_DIR / cat / mid / "rendering"
    rdir.mkdir(parents=True, exist_ok=True)
    names = [f"{k:02d}.png" for k in range(n_views)]
    for name, img in zip(names, views):
        (rdir / name).write_bytes(png_bytes(img, "RGBA"))
    (rdir / "rendering_metadata.txt").write_text(metadata_text(cams))
    (rdir / "renderings.txt").write_text("".join(n + "\n" for n in names))
    pts = sample_surface(v, f, DENSE_POINTS, rng, where=str(path)).astype(np.float32)  # (K, 3)
    buf = io.BytesIO()
    np.save(buf, pts)
    dst = shapenet.points_path(tmp, cat, mid)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(buf.getvalue())


def read_meshes(root: Path, cfg, workers: int, out: Path) -> tuple[dict[str, dict], dict]:
    """The ``meshes`` reader of ``mesc3d prepare`` (see the module docstring) -> (splits, summary fields)."""
    d = cfg.data
    files = class_files(root, d.categories)
    jobs = [(cat, mid, p) for cat, paths in files.items() for mid, p in zip(model_ids(paths), paths)]
    verdicts = map_items(_check, [j[2] for j in jobs], workers, "check meshes")
    skipped = {r: 0 for r in REASONS}
    skipped_files, usable = [], {cat: [] for cat in files}
    for (cat, mid, path), verdict in zip(jobs, verdicts):
        if verdict is None:
            usable[cat].append((cat, mid, path))
            continue
        reason = verdict.split(":", 1)[0]
        skipped[reason] += 1
        rel = f"{cat}/{path.name}"
        skipped_files.append({"file": rel, "reason": verdict})
        log.warning("skipping %s: %s", rel[:200], verdict[:200])
    short = {c: len(u) for c, u in usable.items() if len(u) < MIN_PER_CLASS}
    if short:
        cat, n = next(iter(short.items()))
        raise BadInputError(root / cat, f"class {cat!r} has {n} usable meshes of {len(files[cat])} mesh files "
                            f"({len(files[cat]) - n} skipped); at least {MIN_PER_CLASS} are needed"
                            + (f" (also short: {sorted(short)[:10]})" if len(short) > 1 else ""))
    renders = Path(out) / RENDER_DIR
    tmp = renders.with_name(renders.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    good = [j for cat in files for j in usable[cat]]
    map_items(partial(_render, tmp=str(tmp), n_views=d.n_views), good, workers, "render meshes")
    if renders.exists():
        trash = renders.with_name(f"{renders.name}.trash-{os.getpid()}")
        os.replace(renders, trash)
        shutil.rmtree(trash)
    os.replace(tmp, renders)
    renders = renders.absolute()
    splits: dict[str, list[tuple]] = {s: [] for s in shapenet.SPLITS}
    for cat in files:
        parts = shapenet.split_ids([mid for _, mid, _ in usable[cat]], d.train_frac, d.val_frac)
        for s in shapenet.SPLITS:
            splits[s] += [(cat, cat, mid) for mid in parts[s]]
    arrays = {s: layout_arrays(renders, items, cfg, workers, f"prepare {s}", "meshes") for s, items in splits.items()}
    extra = {
        "mesh_root": str(root), "renders": str(renders), "mesh_files": len(jobs),
        "usable": {c: len(u) for c, u in usable.items()}, "skipped": skipped, "skipped_files": skipped_files,
    }
    log.info("meshes: %d usable of %d files in %d classes (skipped: %s)", len(good), len(jobs), len(files),
             ", ".join(f"{k} {v}" for k, v in skipped.items() if v) or "none")
    return arrays, extra
