"""One registry per concept: the single source of every name a config key, a sheet column or a CLI
flag may take.  Adding an encoder, a data source, a loss or a run kind is one entry here (plus the
code it names); config validation, the experiments sheet, the workflow and the docs read these.

This module is a leaf: it imports nothing from mesc3d but plain constants, so every layer (cli,
engine, models, data, ops, tables) may read it.  Builders are named as ``"module:function"`` strings
and imported by the layer that builds them.
"""

from __future__ import annotations

from dataclasses import dataclass

# ------------------------------------------------------------------ losses
# train.loss value -> its name in tables and logs (the Chamfer norms of mesc3d.ops.chamfer)
LOSSES: dict[str, str] = {"l1": "CD-L1", "l2": "CD-L2", "l1+l2": "CD-L1 + CD-L2"}


# ------------------------------------------------------------------ run kinds (experiments sheet)
@dataclass(frozen=True)
class RunKind:
    """What one value of the sheet's ``kind`` column means to the workflow and the tables.

    ``rule``: the rule writing ``results/eval/{exp}/per_category.csv`` for rows of this kind;
    ``trains``: the row has a trained model (so it also has zero-shot, Pix3D and complexity results);
    ``needs_same_as``: the row names another (non-alias) run in ``same_as`` and reuses its results;
    ``overrides``: the row's ``overrides`` are applied (an alias has exactly its target's config).
    """

    rule: str
    trains: bool = False
    needs_same_as: bool = False
    overrides: bool = True
    baseline: str = ""  # `mesc3d baseline --kind` value (baselines only)
    doc: str = ""


RUN_KINDS: dict[str, RunKind] = {
    "mesc3d": RunKind("evaluate", trains=True, doc="train + evaluate the model"),
    "retrieval": RunKind("baseline", baseline="retrieval", doc="nearest-neighbour retrieval baseline"),
    "class_mean": RunKind("baseline", baseline="class_mean", doc="per-class mean cloud baseline (oracle class)"),
    "alias": RunKind("alias", needs_same_as=True, overrides=False,
                     doc="same results as the run named in same_as (no job of its own but a copy)"),
}


def kinds_where(**flags) -> tuple[str, ...]:
    """Run kinds whose RunKind fields equal ``flags`` (e.g. ``kinds_where(rule="baseline")``)."""
    return tuple(k for k, v in RUN_KINDS.items() if all(getattr(v, f) == x for f, x in flags.items()))


# ------------------------------------------------------------------ image encoders and teachers


# ------------------------------------------------------------------ data sources
# data.source value -> how its data root is read.  `reader` ("module:function", called by
# `mesc3d prepare`) takes (root: Path, cfg: ExperimentCfg, workers: int, out: Path) and returns
# ({"train"|"val"|"test": split arrays}, {extra summary.json fields}); `out` is the prepared folder (a
# reader that derives files from the root, e.g. renders, writes them below it, never into the root).
# `folder_classes`: False = data.categories must be names of mesc3d.categories (ShapeNet synsets and
# the Pix3D loader name the folders); True = any folder name under the root, and data.categories
# left out of the config means every subfolder, sorted.  `pix3d_photos`: the root may hold pix3d/ with
# the zero-shot classes (zeroshot.npz) and the Tab. 2 photos (pix3d_test.npz); without it both files are
# written with 0 records and data.unseen_categories must be empty (it defaults to []).


@dataclass(frozen=True)
class DataSource:
    reader: str  # "module:function" returning the train/val/test split arrays
    layout: str  # what data.root holds (docs and error lines)
    folder_classes: bool  # class names = the root's subfolders (open vocabulary)
    pix3d_photos: bool  # unseen classes and Tab. 2 photos come from root/pix3d/


DATA_SOURCES: dict[str, DataSource] = {
    "synthetic": DataSource("mesc3d.data.splits:read_shapenet",
                            "the procedural benchmark of `mesc3d synth` (ShapeNet + Pix3D layouts)", False, True),
    "shapenet": DataSource("mesc3d.data.splits:read_shapenet",
                           "ShapeNetV1PointCloud/<synset>/, ShapeNetV1Renderings/<synset>/ (+ pix3d/)", False, True),
    "pix3d": DataSource("mesc3d.data.splits:read_pix3d", "pix3d/{pix3d.json,img,mask,model}", False, True),
    "meshes": DataSource("mesc3d.data.meshes:read_meshes",
                         "<class>/<name>.{obj,ply,off,stl,glb,gltf}: any mesh trimesh reads", True, False),
}


def load_reader(spec: str):
    """The function a ``"module:function"`` registry string names (imported on use)."""
    import importlib

    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)
