"""The one safe reader of torch files (checkpoints, weights, prompts) and the one state-dict unwrapper.

Every ``.pt``/``.pth``/``.bin`` the package reads goes through ``load_torch``:
``torch.load(path, map_location, weights_only=True)`` -- tensors, numbers, strings and plain
containers only, never pickled objects -- with any failure (missing, truncated, not a torch file,
pickled objects) turned into one ``BadInputError`` line naming the file.

``state_dict_of`` unwraps the usual containers around a state dict (``{"state_dict": ...}``,
``{"model": ...}``, ``{"net_state_dict": ...}``), strips DataParallel's ``module.`` prefix and keeps
the tensors.

A leaf module (imports only ``mesc3d.errors``): models, data and engine all read files through it.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch

from mesc3d.errors import BadInputError

WRAPPER_KEYS = ("state_dict", "model", "net_state_dict")  # containers checkpoints put a state dict in


def _last_line(err: BaseException) -> str:
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip() and "Check the documentation" not in ln]
    return lines[-1][:160] if lines else type(err).__name__


def load_torch(path: str | Path, what: str = "torch checkpoint", map_location: Any = "cpu", mmap: bool = False) -> Any:
    """``torch.load(path, map_location, weights_only=True)``; any failure is one ``BadInputError``.

    ``what`` names the kind of file in the message ("prompts file", "EfficientNet-Lite0 weights" ...);
    ``mmap`` maps the tensors instead of reading them (checking a large download).
    """
    path = Path(path)
    if not path.is_file():
        raise BadInputError(path, f"{what} does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(err))
        if found:
            raise BadInputError(path, f"refused: the {what} contains pickled Python objects "
                                f"({found.group(1)}) that weights_only loading does not allow; re-save it "
                                "with plain tensors/numbers/str/dicts only") from None
        raise BadInputError(path, f"not a readable {what} (weights_only unpickling failed: "
                            f"{_last_line(err)})") from None
    except Exception as err:  # noqa: BLE001 - truncated zip, not a torch file, EOFError, ...
        raise BadInputError(path, f"not a readable {what} ({type(err).__name__}: {_last_line(err)})") from None


def state_dict_of(obj: Any, path: str | Path, what: str = "a state dict",
                  wrappers: tuple[str, ...] = WRAPPER_KEYS) -> dict[str, torch.Tensor]:
    """A loaded file -> its state dict: unwrap ``wrappers`` (outermost first), strip ``module.``,
    keep tensors.  Anything but a dict -> ``BadInputError`` ("expected {what}, got list")."""
    for key in wrappers:
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise BadInputError(path, f"expected {what}, got {type(obj).__name__}")
    return {str(k).removeprefix("module."): v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def nonfinite_tensors(state: Any) -> list[str]:
    """Names of the floating-point tensors of a state dict holding NaN or Inf (``[]`` for anything
    but a dict): weights that must never be loaded or trusted."""
    if not isinstance(state, dict):
        return []
    return [str(k) for k, v in state.items()
            if isinstance(v, torch.Tensor) and v.is_floating_point() and not torch.isfinite(v).all()]
