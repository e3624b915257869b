"""Which resolved config keys each pipeline stage reads: the single source of the rerun logic.

Every Snakemake rule that runs a stage passes ``stage_json(run_cfg, stage)`` as a ``params`` value, so
a job reruns exactly when one of the *resolved* keys of its slice changes (preset and dataclass
defaults applied): editing ``eval.fscore_threshold`` reruns the evaluations, not the trainings.
``tests/test_invalidation.py`` runs the smoke DAG with ``MESC3D_RECORD_CONFIG_READS`` set and fails
when a stage reads a key outside its slice (see ``mesc3d.config_reads``).

A slice entry is a dotted key prefix: ``"data"`` is every ``data.*`` key, ``"train.pointmae_lr"`` one
key.  Keys marked ``metadata=PATH`` in ``mesc3d.config`` name files a stage loads; ``stage_files``
returns those of a stage's slice, and the rules declare them as inputs (a changed weights file
reruns the runs that load it).
"""

from __future__ import annotations

import json
from dataclasses import fields, is_dataclass
from typing import Any, Mapping

# The train keys Point-MAE pretraining uses (its own schedule + the shared batch/device settings).
_POINTMAE_TRAIN = ("train.pointmae_epochs", "train.pointmae_lr", "train.pointmae_mask_ratio",
                   "train.batch_size", "train.max_steps", "train.amp", "train.device",
                   "train.checkpoint_minutes")
_RUN = ("name", "seed")

_EVAL = ("eval.batch_size", "eval.fscore_threshold", "eval.fscore_euclidean_threshold")  # metrics
# evaluate / zeroshot pick their device with "auto" (mesc3d.engine.stage.device_name): no train.device
_PRED = ("data", "model", "prompt", *_EVAL, "eval.n_ply", "eval.n_figure")  # + samples

# stage (= CLI sub-command run by one rule) -> dotted key prefixes of the resolved config it reads
STAGES: dict[str, tuple[str, ...]] = {
    "prepare": ("seed", "data"),
    "pretrain_pointmae": ("seed", "model.point_mae", *_POINTMAE_TRAIN),
    # data.source: the class names are validated against the source's vocabulary (registries.DATA_SOURCES)
    "cache_features": ("seed", "data.source", "data.categories", "model.point_mae", "prompt.feature_dtype"),
    "pretrain_prompt": ("seed", "data.source", "data.categories", "data.unseen_categories", "prompt",
                        "train.checkpoint_minutes"),  # stage 1 runs on the CPU whatever train.device says
    "train": (*_RUN, "data", "model", "prompt", "train", "eval.batch_size"),  # validation batches
    "evaluate": (*_RUN, *_PRED),
    "zeroshot": (*_RUN, *_PRED),
    "baseline": (*_RUN, "data", *_EVAL),
    "complexity": (*_RUN, "preset", "data", "model", "prompt", "train.device", "eval.latency_repeats"),
}
# stages that read prompt.* only when the run uses the text prior (ExperimentCfg.uses_prior)
PRIOR_ONLY = {"train": "prompt", "evaluate": "prompt", "zeroshot": "prompt"}


def _covers(prefixes: tuple[str, ...], key: str) -> bool:
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dict -> {"a.b.c": value} (lists are leaves)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, path + "."))
        else:
            out[path] = value
    return out


def stage_keys(stage: str) -> tuple[str, ...]:
    if stage not in STAGES:
        raise KeyError(f"unknown stage {stage!r}; known: {sorted(STAGES)}")
    return STAGES[stage]


def reads_allowed(stage: str, key: str) -> bool:
    """Is the dotted key (or a section of it) inside the stage's slice?"""
    prefixes = stage_keys(stage)
    # reading a whole section object (cfg.model) is allowed when anything under it is in the slice;
    # its fields are checked one by one as they are read
    return _covers(prefixes, key) or any(p.startswith(key + ".") for p in prefixes)


def stage_slice(cfg: Any, stage: str) -> dict[str, Any]:
    """The resolved keys of one stage, flat and sorted: ``{"data.n_views": 24, ...}``."""
    from mesc3d.config import to_dict

    from mesc3d.config import from_dict

    cfg = cfg if is_dataclass(cfg) else from_dict(cfg)
    data = to_dict(cfg)
    prefixes = stage_keys(stage)
    if stage in PRIOR_ONLY and not cfg.uses_prior:
        prefixes = tuple(p for p in prefixes if not _covers((PRIOR_ONLY[stage],), p))
        if cfg.model.image_encoder.startswith("clip_"):  # Tab. 4 towers start from the run's CLIP weights
            prefixes += ("prompt.pretrained",)
    return {k: v for k, v in sorted(flatten(data).items()) if _covers(prefixes, k)}


def stage_dict(cfg: Any, stage: str) -> dict[str, Any]:
    """A stage's slice as a nested dict: what ``mesc3d resolve-config --json`` turns into the stage's
    config file (keys outside the slice take their defaults there; the stage never reads them)."""
    out: dict[str, Any] = {}
    for key, value in stage_slice(cfg, stage).items():
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def stage_json(cfg: Any, stage: str) -> str:
    """Canonical JSON of a stage's slice: a stable string for a Snakemake ``params`` rerun trigger."""
    return json.dumps(stage_slice(cfg, stage), sort_keys=True, separators=(",", ":"))


def path_keys(cls: type | None = None, prefix: str = "") -> list[str]:
    """Dotted names of every config key marked ``metadata=PATH`` (a file a stage loads)."""
    from mesc3d.config import ExperimentCfg

    cls = cls or ExperimentCfg
    out = []
    for f in fields(cls):
        sub = _field_class(cls, f.name)
        if is_dataclass(sub):
            out += path_keys(sub, f"{prefix}{f.name}.")
        elif f.metadata.get("path"):
            out.append(f"{prefix}{f.name}")
    return out


def _field_class(cls: type, name: str) -> Any:
    from typing import get_type_hints

    return get_type_hints(cls)[name]


def is_file_value(key: str, value: str) -> bool:
    """A path key's value names a file (not "" and, for keys that also take a tag, not a tag)."""
    from mesc3d.config import ExperimentCfg

    if not value:
        return False
    cls, *parts = ExperimentCfg, *key.split(".")
    meta = {}
    for part in parts:
        f = {x.name: x for x in fields(cls)}[part]
        meta = f.metadata
        if is_dataclass(_field_class(cls, part)):
            cls = _field_class(cls, part)
    if meta.get("path") == "or_tag":  # e.g. prompt.pretrained: "openai" is a tag, "w/clip.bin" a file
        return "/" in value or "." in value.rsplit("/", 1)[-1]
    return True


def _loaded(cfg: Any, key: str) -> bool:
    """A weights key of an image encoder/teacher is loaded only by the runs that build that network
    (mesc3d.registries); every other path key is loaded by the stages whose slice holds it."""
    from mesc3d.registries import IMAGE_ENCODERS, TEACHERS, weights_used

    declared = {s.weights.key for s in (*IMAGE_ENCODERS.values(), *TEACHERS.values()) if s.weights}
    if key not in declared:
        return True
    return key in {w.key for _, w in weights_used(cfg.model.image_encoder, cfg.model.teachers)}


def stage_files(cfg: Any, stage: str) -> list[str]:
    """Files named by the path keys of a stage's slice that the run loads (inputs of its rule), sorted."""
    from mesc3d.config import from_dict

    cfg = cfg if is_dataclass(cfg) else from_dict(cfg)
    sl = stage_slice(cfg, stage)
    return sorted({str(sl[k]) for k in path_keys() if k in sl and is_file_value(k, str(sl[k])) and _loaded(cfg, k)})


# train-slice keys that do not change what a trained model is (runtime settings)
RUNTIME_ONLY = ("name", "train.device", "train.num_workers", "train.checkpoint_minutes", "eval.batch_size")


def check_same_run(trained: Any, cfg: Any, model_path: str, stage: str = "evaluate") -> None:
    """Refuse to evaluate a model under a config it was not trained with (it would be mislabelled).

    ``trained`` is the config stored in ``model.pt`` (the train slice), ``cfg`` the evaluating stage's;
    the keys both slices hold must agree (data, model, the prompt when used, seed), except the
    runtime-only ones.  Raises ConfigError naming up to five differing keys.
    """
    from mesc3d.errors import ConfigError

    a, b = stage_slice(trained, "train"), stage_slice(cfg, stage)
    diff = [k for k in sorted(set(a) & set(b)) if not _covers(RUNTIME_ONLY, k) and a[k] != b[k]]
    if diff:
        shown = ", ".join(f"{k}: model {a.get(k)!r} vs config {b.get(k)!r}" for k in diff[:5])
        more = f" (+{len(diff) - 5} more)" if len(diff) > 5 else ""
        raise ConfigError(f"{model_path} was trained as {getattr(trained, 'name', '?')!r} with a different "
                          f"config than {getattr(cfg, 'name', '?')!r}: {shown}{more}")
