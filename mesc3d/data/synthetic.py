"""The embedded procedural benchmark, written in the real ShapeNet (R2N2/3DAttriFlow) and Pix3D layouts.

Output tree under ``out`` (identical formats to the real data, so one set of loaders reads both)::

    ShapeNetV1PointCloud/<synset>/<model_id>.points.ply.npy   float32 (K, 3) surface samples
    ShapeNetV1Renderings/<synset>/<model_id>/rendering/00.png .. 23.png   137x137 RGBA
                                                      /rendering_metadata.txt  (az el inplane dist 25)
                                                      /renderings.txt          (the png names)
    pix3d/pix3d.json                   list of records (img, mask, model, category, img_size, bbox, ...)
    pix3d/img/<cat>/0001.png ...       RGB photos with a cluttered background
    pix3d/mask/<cat>/0001.png ...      L-mode masks {0, 255}
    pix3d/model/<cat>/<name>/model.obj the mesh (v / f lines only)
    manifest.json                      parameters, model ids, file count and a tree hash; written LAST

Seen classes go to the ShapeNet layout, unseen ones to the Pix3D layout.  Model ids are 32-hex
strings from sha256(seed, class, index); every shape has its own generator seeded from
(seed, class, index), so the files are byte-identical for the same parameters, whatever the
number of workers.  The tree is built in ``<out>.partial`` and renamed onto ``<out>`` at the end,
so an interrupted run never leaves a directory that looks complete.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import multiprocessing as mp
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from mesc3d.categories import PIX3D_ALL, SEEN, UNSEEN, check_categories
from mesc3d.data.pix3d import PIX3D_TO_SHAPENET_V1, from_shapenet_v1
from mesc3d.data.render import metadata_text, r2n2_cameras, render_photo, render_views
from mesc3d.data.sampling import sample_surface
from mesc3d.data.shapes import make_shape, model_id, palette, shape_rng
from mesc3d.errors import ConfigError

log = logging.getLogger(__name__)
OUR_TOP_LEVEL = {"ShapeNetV1PointCloud", "ShapeNetV1Renderings", "pix3d", "manifest.json"}


@dataclass(frozen=True)
class SynthCfg:
    per_class: int = 30  # models per seen class (ShapeNet layout)
    unseen_per_class: int = 8  # models per unseen class (Pix3D layout)
    images_per_model: int = 2  # Pix3D photos per unseen model
    pix3d_seen_per_class: int = 0  # extra models of the Pix3D classes shared with SEEN, Pix3D layout (Tab. 2)
    seed: int = 0
    dense_points: int = 10000  # K surface samples per seen model (real data: 30000)
    views: int = 24
    image_size: int = 137
    categories: tuple[str, ...] = tuple(SEEN)
    unseen_categories: tuple[str, ...] = UNSEEN

    def validate(self) -> None:
        check_categories(self.categories, allowed=tuple(SEEN), where="synth --categories")
        check_categories(self.unseen_categories, allowed=UNSEEN, where="synth --unseen-categories")
        if self.per_class < 0 or self.unseen_per_class < 0 or self.pix3d_seen_per_class < 0 or self.images_per_model < 1:
            raise ConfigError("synth: per-class counts must be >= 0 and images-per-model >= 1")
        if self.dense_points < 1 or self.views < 1 or self.image_size < 16:
            raise ConfigError("synth: dense-points and views must be >= 1, image-size >= 16")


def png_bytes(array: np.ndarray, mode: str) -> bytes:
    """Deterministic PNG encoding (fixed compression level, no metadata chunks)."""
    buf = io.BytesIO()
    Image.fromarray(array, mode).save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def obj_text(vertices: np.ndarray, faces: np.ndarray) -> str:
    """Minimal Wavefront OBJ (``v`` and 1-based ``f`` lines), deterministic."""
    lines = [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in np.asarray(vertices)]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in np.asarray(faces)]
    return "\n".join(lines) + "\n"


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def build_seen(root: Path, cfg: SynthCfg, category: str, index: int) -> str:
    """Generate one seen-class model into ``root`` (ShapeNet layout); returns its model id."""
    rng = shape_rng(cfg.seed, category, index)
    mesh, roles = make_shape(category, rng)
    colors = palette(rng)
    cams = r2n2_cameras(rng, cfg.views)
    mid = model_id(cfg.seed, category, index)
    synset = SEEN[category]
    rdir = root / "ShapeNetV1Renderings" / synset / mid / "rendering"
    views = render_views(mesh, roles, colors, cams, size=cfg.image_size)  # (V, S, S, 4)
    names = [f"{v:02d}.png" for v in range(cfg.views)]
    for name, img in zip(names, views):
        _write(rdir / name, png_bytes(img, "RGBA"))
    _write(rdir / "rendering_metadata.txt", metadata_text(cams).encode())
    _write(rdir / "renderings.txt", "".join(n + "\n" for n in names).encode())
    pts = sample_surface(mesh.vertices, mesh.faces, cfg.dense_points, rng).astype(np.float32)  # (K, 3)
    buf = io.BytesIO()
    np.save(buf, pts)
    _write(root / "ShapeNetV1PointCloud" / synset / f"{mid}.points.ply.npy", buf.getvalue())
    return mid


def build_unseen(root: Path, cfg: SynthCfg, category: str, index: int) -> list[dict]:
    """Generate one unseen-class model and its photos (Pix3D layout); returns its json records."""
    rng = shape_rng(cfg.seed, category, index)
    mesh, roles = make_shape(category, rng)
    colors = palette(rng)
    mid = model_id(cfg.seed, category, index)
    name = f"SYNTH_{category.upper()}_{mid[:8]}"
    model_rel = f"model/{category}/{name}/model.obj"
    # stored in Pix3D's model frame, like the real models, so prepare's rotation into ShapeNet v1 is exercised
    _write(root / "pix3d" / model_rel, obj_text(from_shapenet_v1(mesh.vertices), mesh.faces).encode())
    records = []
    for j in range(cfg.images_per_model):
        photo = render_photo(mesh, roles, colors, rng)
        stem = f"{index * cfg.images_per_model + j + 1:04d}"
        img_rel, mask_rel = f"img/{category}/{stem}.png", f"mask/{category}/{stem}.png"
        _write(root / "pix3d" / img_rel, png_bytes(photo["image"], "RGB"))
        _write(root / "pix3d" / mask_rel, png_bytes(photo["mask"], "L"))
        records.append({  # the real pix3d.json field order
            "img": img_rel, "category": category, "img_size": photo["img_size"], "2d_keypoints": [],
            "mask": mask_rel, "img_source": "synthetic", "model": model_rel, "model_raw": model_rel,
            "model_source": "mesc3d-synth", "3d_keypoints": "", "voxel": "",
            # camera rotation for the model as stored (Pix3D frame): x_cam = R_v1 (M p_pix3d) -> R_v1 M
            "rot_mat": (np.asarray(photo["rot_mat"]) @ PIX3D_TO_SHAPENET_V1).tolist(),
            "trans_mat": photo["trans_mat"], "focal_length": photo["focal_length"],
            "cam_position": photo["cam_position"], "inplane_rotation": photo["inplane_rotation"],
            "truncated": False, "occluded": False, "slightly_occluded": False, "bbox": photo["bbox"],
        })
    return records


PIX3D_SEEN_OFFSET = 100_000  # shape index of the first Pix3D-layout model of a seen class


def pix3d_seen_classes(cfg: SynthCfg) -> tuple[str, ...]:
    """Seen classes written in the Pix3D layout too (those real Pix3D has: chair, sofa, table)."""
    return tuple(c for c in cfg.categories if c in PIX3D_ALL) if cfg.pix3d_seen_per_class else ()


def _task(args: tuple) -> tuple:
    root, cfg, kind, category, index = args
    if kind == "seen":
        return kind, category, index, build_seen(Path(root), cfg, category, index)
    return kind, category, index, build_unseen(Path(root), cfg, category, index)


def tree_hash(root: Path) -> tuple[int, str]:
    """(number of files, sha256 over sorted 'relpath sha256' lines) of a directory tree."""
    h = hashlib.sha256()
    files = sorted(p for p in root.rglob("*") if p.is_file())
    for p in files:
        h.update(f"{p.relative_to(root).as_posix()} {hashlib.sha256(p.read_bytes()).hexdigest()}\n".encode())
    return len(files), h.hexdigest()


def _replaceable(out: Path) -> bool:
    return out.is_dir() and all(p.name in OUR_TOP_LEVEL for p in out.iterdir())


def generate(out: str | Path, cfg: SynthCfg, workers: int = 1, overwrite: bool = False) -> dict:
    """Write the benchmark to ``out`` (atomically, as a whole); returns the manifest dict."""
    cfg.validate()
    out = Path(out).absolute()
    if out.exists() and not (overwrite or _replaceable(out)) and any(out.iterdir()):
        raise ConfigError(f"{out}: exists and holds files that synth did not write; pass --overwrite")
    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    tasks = [(str(tmp), cfg, "seen", c, i) for c in cfg.categories for i in range(cfg.per_class)]
    tasks += [(str(tmp), cfg, "unseen", c, i) for c in cfg.unseen_categories for i in range(cfg.unseen_per_class)]
    # seen classes that Pix3D also has: new shapes (indices after every ShapeNet-layout one), Pix3D layout
    tasks += [(str(tmp), cfg, "unseen", c, PIX3D_SEEN_OFFSET + i) for c in pix3d_seen_classes(cfg)
              for i in range(cfg.pix3d_seen_per_class)]
    results = []
    try:
        bar = tqdm(total=len(tasks), desc="synth", unit="shape", disable=None)
        if workers > 1 and len(tasks) > 1:
            with mp.get_context("fork").Pool(workers) as pool:
                for res in pool.imap_unordered(_task, tasks, chunksize=2):
                    results.append(res)
                    bar.update()
        else:
            for t in tasks:
                results.append(_task(t))
                bar.update()
        bar.close()
        results.sort(key=lambda r: (r[0] != "seen", r[1], r[2]))
        ids = {c: [] for c in cfg.categories}
        records = []
        for kind, category, index, payload in results:
            if kind == "seen":
                ids[category].append(payload)
            else:
                records += payload
        order = {c: k for k, c in enumerate(tuple(cfg.unseen_categories) + pix3d_seen_classes(cfg))}
        records.sort(key=lambda r: (order[r["category"]], r["img"]))
        if records:
            _write(tmp / "pix3d" / "pix3d.json", (json.dumps(records, indent=1) + "\n").encode())
        n_files, digest = tree_hash(tmp)
        manifest = {
            "generator": "mesc3d synth", "params": {k: (list(v) if isinstance(v, tuple) else v)
                                                    for k, v in asdict(cfg).items()},
            "seen_model_ids": ids, "n_pix3d_records": len(records), "n_files": n_files, "tree_sha256": digest,
        }
        _write(tmp / "manifest.json", (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode())
        if out.exists():
            trash = out.with_name(out.name + f".trash-{os.getpid()}")
            os.replace(out, trash)
            os.replace(tmp, out)
            shutil.rmtree(trash)
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("synth: %d seen and %d Pix3D records in %s", sum(map(len, ids.values())), len(records), out)
    return manifest
