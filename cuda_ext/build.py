"""JIT build of the CUDA C++ extension (nn_kernel.cu + nn_bind.cpp) with torch.utils.cpp_extension.

``load_extension()`` returns an object with ``nn_indices(x, y, x_lengths, y_lengths)`` and
``fps(x, k)`` (same conventions as the Triton kernels).  Used by ``mesc3d.ops`` for
``backend="cuda"``; also run by ``tests/test_triton_kernels.py::test_cuda_extension_compiles`` (slow)
so CI compile-checks it -- it can never run here (no GPU).

Environment facts (stack-measurements §7): ``CUDA_HOME`` must be the toolkit ROOT (a ``nvcc`` shell
wrapper on PATH misleads torch's guess), ``TORCH_CUDA_ARCH_LIST`` must be set when no GPU is visible
(default here "9.0"), and the venv's ``nvidia/cu13/include`` goes on the include path.  The ``.cu``
file includes no torch headers, so nvcc takes ~1 s; ninja is required; ~25 s in total.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
NAME = "mesc3d_nn_cuda"


def find_cuda_home() -> str:
    """Toolkit root: $CUDA_HOME / $CUDA_PATH, else the target of an ``exec .../bin/nvcc`` wrapper,
    else /usr/local/cuda*.  Raises RuntimeError when none has include/cuda_runtime.h."""
    cands = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH")]
    nvcc = shutil.which("nvcc")
    if nvcc:
        real = Path(nvcc).resolve()
        cands.append(str(real.parent.parent))
        try:
            m = re.search(r"(\S+)/bin/nvcc", real.read_text(errors="ignore")[:4096])
            if m:
                cands.append(m.group(1))
        except OSError:
            pass
    cands += ["/usr/local/cuda", *sorted(glob.glob("/usr/local/cuda-*"), reverse=True)]
    for c in cands:
        if c and (Path(c) / "include" / "cuda_runtime.h").is_file() and (Path(c) / "bin" / "nvcc").exists():
            return c
    raise RuntimeError("no CUDA toolkit found (set CUDA_HOME to the toolkit root containing "
                       "include/cuda_runtime.h and bin/nvcc)")


def _extra_includes() -> list[str]:
    out = []
    for p in sys.path:
        inc = Path(p) / "nvidia" / "cu13" / "include"
        if inc.is_dir():
            out.append(str(inc))
            break
    return out


class _Ext:
    def __init__(self, mod):
        self.mod = mod

    def nn_indices(self, x, y, x_lengths=None, y_lengths=None):
        import torch
        B, N, M = x.shape[0], x.shape[1], y.shape[1]
        xl = torch.full((B,), N, dtype=torch.long, device=x.device) if x_lengths is None else x_lengths
        yl = torch.full((B,), M, dtype=torch.long, device=x.device) if y_lengths is None else y_lengths
        a, b = self.mod.nn_indices_raw(x.detach(), y.detach().to(x.dtype), xl, yl)
        return a, b

    def fps(self, x, k: int):
        return self.mod.fps(x.detach(), int(k))


_CACHE: dict[str, _Ext] = {}


def load_extension(build_dir: str | os.PathLike | None = None, verbose: bool = False) -> _Ext:
    """Build (or reuse) and import the extension.  ``build_dir`` defaults to
    ``$MESC3D_CUDA_BUILD_DIR`` or ``~/.cache/mesc3d/cuda_ext``."""
    key = str(build_dir)
    if key in _CACHE:
        return _CACHE[key]
    import torch  # noqa: F401  (the .so needs libc10 loaded first)
    from torch.utils import cpp_extension

    cuda_home = find_cuda_home()
    os.environ["CUDA_HOME"] = cuda_home
    cpp_extension.CUDA_HOME = cuda_home  # torch caches its own guess at import time
    os.environ.setdefault("TORCH_CUDA_ARCH_LIST", "9.0")
    bdir = Path(build_dir or os.environ.get("MESC3D_CUDA_BUILD_DIR")
                or Path.home() / ".cache" / "mesc3d" / "cuda_ext")
    bdir.mkdir(parents=True, exist_ok=True)
    mod = cpp_extension.load(
        name=NAME, sources=[str(HERE / "nn_bind.cpp"), str(HERE / "nn_kernel.cu")],
        extra_include_paths=_extra_includes(), extra_cuda_cflags=["-O3"], extra_cflags=["-O2"],
        build_directory=str(bdir), verbose=verbose)
    _CACHE[key] = _Ext(mod)
    return _CACHE[key]
