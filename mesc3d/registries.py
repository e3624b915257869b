"""One registry per concept: the single source of every name a config key, a sheet column or a CLI
flag may take.  Adding an encoder, a data source, a loss or a run kind is one entry here (plus the
code it names); config validation, the experiments sheet, the workflow and the docs read these.

This module is a leaf: it imports nothing from mesc3d but plain constants, so every layer (cli,
engine, models, data, ops, tables) may read it.  Builders are named as ``"module:function"`` strings
and imported by the layer that builds them.
"""

from __future__ import annotations

# ------------------------------------------------------------------ losses
# train.loss value -> its name in tables and logs (the Chamfer norms of mesc3d.ops.chamfer)
LOSSES: dict[str, str] = {"l1": "CD-L1", "l2": "CD-L2", "l1+l2": "CD-L1 + CD-L2"}


# ------------------------------------------------------------------ run kinds (experiments sheet)


# ------------------------------------------------------------------ image encoders and teachers


# ------------------------------------------------------------------ data sources
