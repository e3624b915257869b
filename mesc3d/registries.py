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
