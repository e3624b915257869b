"""Backend selection for the point-cloud ops: ``torch`` (always available), ``kdtree``, ``triton``, ``cuda``.

Choice, in order: the ``backend=`` argument of an op, else the environment variable
``MESC3D_OPS_BACKEND`` (``auto|torch|kdtree|triton|cuda``), else ``auto``.

- ``auto``: CUDA tensors of shape (B, N, 3) float32/float64 use Triton if it is installed, else
  torch; CPU tensors always use torch.  (``auto`` never triggers the CUDA C++ JIT build.)
- ``torch``: the pure-torch path (CPU and GPU).
- ``kdtree``: CPU only, nearest-neighbour search through scipy's cKDTree (float64, exact, several
  times faster than the torch path on the CPU); FPS and kNN use torch under it.
- ``triton``: the Triton kernels of ``<repo>/cuda_ext/``; needs CUDA tensors, or CPU tensors with
  ``TRITON_INTERPRET=1`` (the interpreter; tests only).  The variable must be set before ``triton``
  is first imported in the process: ``triton.jit`` reads it when decorating, and triton.language's
  own jit'd helpers (``tl.zeros``, index-returning ``tl.min``) are decorated at ``import triton``.
- ``cuda``: the CUDA C++ extension of ``<repo>/cuda_ext/`` (JIT-built with
  ``torch.utils.cpp_extension.load`` on first request); needs CUDA tensors.

Requesting ``triton`` or ``cuda`` when it cannot run raises :class:`BackendUnavailableError` with the
reason -- never a silent fallback.  The kernel folder can be moved with ``MESC3D_CUDA_EXT_DIR``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from functools import lru_cache
from pathlib import Path

import torch

from .fps import farthest_point_sample_torch, validate_fps
from .knn import knn_torch
from .nn_dist import finish_from_indices, nearest_indices_kdtree, nearest_sq_dist_torch, validate_pair

BACKENDS = ("auto", "torch", "kdtree", "triton", "cuda")
ENV_VAR = "MESC3D_OPS_BACKEND"


class BackendUnavailableError(RuntimeError):
    """A GPU backend was explicitly requested but cannot run here."""


def cuda_ext_dir() -> Path:
    env = os.environ.get("MESC3D_CUDA_EXT_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "cuda_ext"


def requested_backend(backend: str | None = None) -> str:
    name = (backend if backend is not None else os.environ.get(ENV_VAR, "auto") or "auto").strip().lower()
    if name not in BACKENDS:
        src = "backend=" if backend is not None else f"{ENV_VAR}="
        raise ValueError(f"{src}{name!r} is not one of {', '.join(BACKENDS)}")
    return name


def triton_interpret() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on", "yes")


@lru_cache(maxsize=None)
def _load_module(filename: str, tag: str = ""):
    """Import ``cuda_ext/<filename>`` by path; one module object per (file, tag)."""
    path = cuda_ext_dir() / filename
    if not path.is_file():
        raise BackendUnavailableError(f"kernel file {path} not found (set MESC3D_CUDA_EXT_DIR)")
    name = f"mesc3d_cuda_ext_{path.stem}{tag}"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    except ImportError as e:
        del sys.modules[name]
        raise BackendUnavailableError(f"cannot import {path.name}: {e}") from e
    return mod


def triton_available() -> bool:
    return importlib.util.find_spec("triton") is not None


def load_triton_kernels():
    """The ``cuda_ext/triton_kernels.py`` module (raises BackendUnavailableError).

    ``triton.jit`` reads TRITON_INTERPRET when it decorates, so the module is loaded once per value
    of that flag (the flag must still be set before ``import triton``, see the module docstring).
    """
    if not triton_available():
        raise BackendUnavailableError("backend 'triton' requested but the triton package is not installed")
    return _load_module("triton_kernels.py", "_interp" if triton_interpret() else "")


def load_cuda_extension():
    """The compiled CUDA C++ extension (JIT build on first call; raises BackendUnavailableError)."""
    builder = _load_module("build.py")
    try:
        return builder.load_extension()
    except Exception as e:  # compiler missing, CUDA_HOME unset, ...
        raise BackendUnavailableError(f"backend 'cuda' requested but the CUDA extension cannot be "
                                      f"built/loaded: {e}") from e


def resolve(t: torch.Tensor, backend: str | None = None) -> str:
    """Backend actually used for tensor ``t`` (B, N, D): 'torch', 'triton' or 'cuda' (or raise).

    The GPU kernels handle D == 3 in float32/float64 only; ``auto`` uses torch otherwise.
    """
    name = requested_backend(backend)
    if name == "torch":
        return "torch"
    if name == "kdtree":
        if t.is_cuda:
            raise BackendUnavailableError("backend 'kdtree' (scipy cKDTree) is CPU only; got a CUDA tensor")
        return "kdtree"
    kernel_ok = t.dim() == 3 and t.shape[-1] == 3 and t.dtype in (torch.float32, torch.float64)
    if name == "auto":
        if t.is_cuda and kernel_ok and triton_available():
            return "triton"
        return "torch"
    if not kernel_ok:
        raise BackendUnavailableError(
            f"backend {name!r} requested but its kernels need (B, N, 3) float32/float64 input; got "
            f"{tuple(t.shape)} {t.dtype}")
    if name == "triton":
        if not triton_available():
            raise BackendUnavailableError("backend 'triton' requested but the triton package is not installed")
        if not t.is_cuda and not triton_interpret():
            raise BackendUnavailableError(
                f"backend 'triton' requested for a {t.device} tensor: Triton needs CUDA tensors "
                f"(torch.cuda.is_available()={torch.cuda.is_available()}); set TRITON_INTERPRET=1 "
                f"to run the kernels in the CPU interpreter (tests only)")
        return "triton"
    # name == "cuda"
    if not t.is_cuda:
        raise BackendUnavailableError(
            f"backend 'cuda' requested for a {t.device} tensor: the CUDA C++ kernels need CUDA tensors "
            f"(torch.cuda.is_available()={torch.cuda.is_available()})")
    return "cuda"


# ------------------------------------------------------------------ the dispatching ops
def nearest_sq_dist(x: torch.Tensor, y: torch.Tensor, x_lengths=None, y_lengths=None, *,
                    backend: str | None = None, index_dtype: torch.dtype | None = None):
    """Nearest-neighbour squared distances in both directions (see :mod:`mesc3d.ops.nn_dist`).

    x (B, N, D), y (B, M, D) -> d_xy (B, N), idx_xy (B, N) long, d_yx (B, M), idx_yx (B, M) long.
    Padded positions (ragged ``*_lengths``) get distance 0 and index -1.  ``index_dtype=torch.float64``
    makes the neighbour search robust to near-ties (torch path).
    """
    which = resolve(x, backend)
    if which == "torch":
        return nearest_sq_dist_torch(x, y, x_lengths, y_lengths, index_dtype=index_dtype)
    x_lengths, y_lengths = validate_pair(x, y, x_lengths, y_lengths)
    if which == "kdtree":
        idx_xy, idx_yx = nearest_indices_kdtree(x, y, x_lengths, y_lengths)
    elif which == "triton":
        idx_xy, idx_yx = load_triton_kernels().nn_indices(x, y, x_lengths, y_lengths)
    else:
        ext = load_cuda_extension()
        idx_xy, idx_yx = ext.nn_indices(x, y, x_lengths, y_lengths)
    return finish_from_indices(x, y, idx_xy, idx_yx, x_lengths, y_lengths)


def farthest_point_sample(x: torch.Tensor, k: int, *, backend: str | None = None) -> torch.Tensor:
    """FPS indices (B, k) long, starting at index 0 (see :mod:`mesc3d.ops.fps`)."""
    which = resolve(x, backend)
    if which in ("torch", "kdtree"):
        return farthest_point_sample_torch(x, k)
    validate_fps(x, k)
    if which == "triton":
        return load_triton_kernels().fps(x, k)
    return load_cuda_extension().fps(x, k)


def knn(x: torch.Tensor, centers: torch.Tensor, k: int) -> torch.Tensor:
    """Indices (B, G, k) long of the k nearest points of x to each centre, sorted by distance."""
    return knn_torch(x, centers, k)
