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
# Preprocessing constants: each lives here once (models.backbones.resize_normalize applies them).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # OpenAI CLIP (= open_clip OPENAI_DATASET_MEAN/STD)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # torchvision / DINOv2 / SAM
IMAGENET_STD = (0.229, 0.224, 0.225)
UNIT_MEAN, UNIT_STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)  # [0, 1] -> [-1, 1] (EfficientNet-Lite0, TF-Lite)
IDENTITY_MEAN, IDENTITY_STD = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)  # images as they come, in [0, 1]


@dataclass(frozen=True)
class Preprocess:
    """Images (B, 3, H, W) RGB in [0, 1] -> the network's input: resize then (x - mean) / std.

    ``size``: bilinear, antialiased resize to size x size; ``None`` = no resize (the model input side
    ``data.image_size``; a CLIP tower checks it against its weights' image size, a CLIP teacher
    resizes to its architecture's own size)."""

    mean: tuple[float, float, float] = IDENTITY_MEAN
    std: tuple[float, float, float] = IDENTITY_STD
    size: int | None = None


@dataclass(frozen=True)
class Weights:
    """What a weights key must name.  ``kind``: ``torch_state_dict`` (a ``torch.save``d state dict,
    read with weights_only=True), ``open_clip`` (a CLIP checkpoint: OpenAI JIT archive / state dict,
    open_clip state dict or visual-only state dict) or ``transformers`` (a ``save_pretrained`` folder
    whose config.json has ``model_type``).  ``required``: an empty key is refused at config validation
    when the encoder/teacher is used (a random frozen network would be meaningless)."""

    key: str  # dotted config key, e.g. "model.dinov2_s14_weights"
    kind: str  # torch_state_dict | open_clip | transformers
    required: bool = False
    model_type: str = ""  # transformers only: config.json's model_type


@dataclass(frozen=True)
class ImageModelSpec:
    """One image encoder (``model.image_encoder``) or 2D teacher (``model.teachers`` item).

    ``builder``: ``"module:function"``.  Encoders: ``function(model_cfg, data_cfg, clip_weights="")
    -> nn.Module`` mapping images (B, 3, H, W) in [0, 1] to tokens (B, n_tokens, token_dim).
    Teachers: ``function(model_cfg) -> models.teachers.Teacher`` (features (B, C)).
    ``teachers``: encoders only -- this encoder is these teachers fused (``agglomerated`` builder)."""

    builder: str
    doc: str
    preprocess: Preprocess = Preprocess()
    trainable: bool = True  # False: frozen (no gradients, always eval mode)
    weights: Weights | None = None
    teachers: tuple[str, ...] = ()


_RESNET_WEIGHTS = Weights("model.image_weights", "torch_state_dict")  # optional ImageNet start, local
_CLIP_TOWER = Weights("model.image_weights", "open_clip")  # "" = the run's prompt.pretrained
_DINO_S = Weights("model.dinov2_s14_weights", "transformers", required=True, model_type="dinov2")
_DINO_B = Weights("model.dinov2_b14_weights", "transformers", required=True, model_type="dinov2")
_EFFNET = Weights("model.effnet_weights", "torch_state_dict")  # "" = the packaged ImageNet file
_AGG = "mesc3d.models.agglomerated:build_encoder"

# model.teachers item -> teacher (mesc3d.models.teachers); order = config.ENUMS order
TEACHERS: dict[str, ImageModelSpec] = {
    "resnet18": ImageModelSpec("mesc3d.models.teachers:resnet18_teacher",
                               "torchvision ResNet-18 (1000-d logits), trainable", weights=_RESNET_WEIGHTS),
    "effnet_lite0": ImageModelSpec("mesc3d.models.teachers:effnet_teacher",
                                   "EfficientNet-Lite0 ImageNet, pooled 1280-d", Preprocess(UNIT_MEAN, UNIT_STD, 224),
                                   trainable=False, weights=_EFFNET),
    "dinov2_s14": ImageModelSpec("mesc3d.models.teachers:dinov2_teacher", "DINOv2 ViT-S/14 pooled CLS (384-d)",
                                 Preprocess(IMAGENET_MEAN, IMAGENET_STD, 224), trainable=False, weights=_DINO_S),
    "dinov2_b14": ImageModelSpec("mesc3d.models.teachers:dinov2_teacher", "DINOv2 ViT-B/14 pooled CLS (768-d)",
                                 Preprocess(IMAGENET_MEAN, IMAGENET_STD, 224), trainable=False, weights=_DINO_B),
    "clip": ImageModelSpec("mesc3d.models.teachers:clip_teacher", "open_clip model.clip_arch visual tower",
                           Preprocess(CLIP_MEAN, CLIP_STD, None), trainable=False,
                           weights=Weights("model.clip_weights", "open_clip", required=True)),
}

# model.image_encoder value -> encoder (mesc3d.models.image_encoder.build_image_encoder)
IMAGE_ENCODERS: dict[str, ImageModelSpec] = {
    "resnet18": ImageModelSpec("mesc3d.models.image_encoder:resnet18_encoder",
                               "ResNet-18 from scratch + linear to tokens (the paper)", weights=_RESNET_WEIGHTS),
    "clip_frozen": ImageModelSpec("mesc3d.models.image_encoder:clip_frozen_encoder",
                                  "frozen CLIP image tower + linear (Tab. 4)", Preprocess(CLIP_MEAN, CLIP_STD),
                                  trainable=False, weights=_CLIP_TOWER),
    "clip_finetune": ImageModelSpec("mesc3d.models.image_encoder:clip_finetune_encoder",
                                    "fine-tuned CLIP image tower + linear (Tab. 4)", Preprocess(CLIP_MEAN, CLIP_STD),
                                    weights=_CLIP_TOWER),
    "effnet_lite0": ImageModelSpec(_AGG, "EfficientNet-Lite0 teacher alone", teachers=("effnet_lite0",)),
    "dinov2_s14": ImageModelSpec(_AGG, "DINOv2 ViT-S/14 teacher alone", teachers=("dinov2_s14",)),
    "dinov2_b14": ImageModelSpec(_AGG, "DINOv2 ViT-B/14 teacher alone", teachers=("dinov2_b14",)),
    "agglomerated": ImageModelSpec(_AGG, "model.teachers fused by model.teacher_fusion"),
}


def teachers_used(image_encoder: str, teachers: tuple[str, ...]) -> tuple[str, ...]:
    """The teachers a run builds: ``model.teachers`` for agglomerated, the row's own for one alone."""
    if image_encoder == "agglomerated":
        return tuple(teachers)
    spec = IMAGE_ENCODERS.get(image_encoder)
    return spec.teachers if spec is not None else ()


def weights_used(image_encoder: str, teachers: tuple[str, ...]) -> list[tuple[str, Weights]]:
    """(encoder or teacher name, its Weights) of every network a run builds that declares weights."""
    out = []
    spec = IMAGE_ENCODERS.get(image_encoder)
    if spec is not None and spec.weights is not None:
        out.append((image_encoder, spec.weights))
    for name in teachers_used(image_encoder, teachers):
        if name in TEACHERS and TEACHERS[name].weights is not None:
            out.append((name, TEACHERS[name].weights))
    return out


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
