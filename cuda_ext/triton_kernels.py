"""Triton kernels for mesc3d.ops: nearest-neighbour argmin (both Chamfer directions) and FPS.

Loaded by ``mesc3d.ops.dispatch.load_triton_kernels`` (by file path; this folder is not a package).
Only the *search* runs here: the kernels return neighbour indices, and mesc3d.ops turns them into
differentiable squared distances with a torch gather -- so the backward pass is the exact autograd
of ``|x - y[idx]|^2`` (a scatter-add) on any device, and forward values are exact difference-form
distances (identical clouds give exactly 0).

- ``nn_indices(x (B,N,3), y (B,M,3), x_lengths, y_lengths) -> (idx_xy (B,N), idx_yx (B,M))`` long,
  -1 at padded positions.  One program per (cloud, block of BLOCK_N query points); it streams the
  other cloud in blocks of BLOCK_M, computing difference-form squared distances, and keeps a running
  min/argmin (ties -> lowest index, like ``torch.argmin``).
- ``fps(x (B,N,3), k) -> (B,k)`` long, starting at index 0.  One program per cloud; the running
  min-distance array lives in a global scratch buffer (any N), blocks of BLOCK points.

Testing without a GPU: ``TRITON_INTERPRET=1`` must be set before this file is loaded (``triton.jit``
reads it when decorating); the interpreter runs the kernels on CPU tensors.  It rejects ``**`` (we
write ``d*d``) and caps tensors at 2**20 elements, so keep blocks small.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _nn_argmin_kernel(a_ptr, b_ptr, alen_ptr, blen_ptr, out_ptr, Na, Nb,
                      BLOCK_A: tl.constexpr, BLOCK_B: tl.constexpr):
    # a: (B, Na, 3) contiguous, b: (B, Nb, 3) contiguous, out: (B, Na) int64 (pre-filled with -1)
    pid_b = tl.program_id(0)
    pid_a = tl.program_id(1)
    a_len = tl.load(alen_ptr + pid_b)
    b_len = tl.load(blen_ptr + pid_b)
    offs_a = pid_a * BLOCK_A + tl.arange(0, BLOCK_A)
    mask_a = offs_a < a_len
    pa = a_ptr + pid_b * Na * 3 + offs_a * 3
    a0 = tl.load(pa + 0, mask=mask_a, other=0.0)
    a1 = tl.load(pa + 1, mask=mask_a, other=0.0)
    a2 = tl.load(pa + 2, mask=mask_a, other=0.0)
    best = tl.zeros([BLOCK_A], dtype=a0.dtype) + float("inf")
    best_idx = tl.zeros([BLOCK_A], dtype=tl.int64)
    pb_base = b_ptr + pid_b * Nb * 3
    for m0 in range(0, b_len, BLOCK_B):
        offs_b = m0 + tl.arange(0, BLOCK_B)
        mask_b = offs_b < b_len
        pb = pb_base + offs_b * 3
        b0 = tl.load(pb + 0, mask=mask_b, other=0.0)
        b1 = tl.load(pb + 1, mask=mask_b, other=0.0)
        b2 = tl.load(pb + 2, mask=mask_b, other=0.0)
        d0 = a0[:, None] - b0[None, :]
        d1 = a1[:, None] - b1[None, :]
        d2 = a2[:, None] - b2[None, :]
        d = d0 * d0 + d1 * d1 + d2 * d2  # (BLOCK_A, BLOCK_B); the interpreter rejects **
        d = tl.where(mask_b[None, :], d, float("inf"))
        cmin, carg = tl.min(d, axis=1, return_indices=True, return_indices_tie_break_left=True)
        better = cmin < best  # strict: earlier blocks win ties
        best = tl.where(better, cmin, best)
        best_idx = tl.where(better, carg.to(tl.int64) + m0, best_idx)
    tl.store(out_ptr + pid_b * Na + offs_a, best_idx, mask=mask_a)


@triton.jit
def _fps_kernel(x_ptr, dist_ptr, out_ptr, N, K, BLOCK: tl.constexpr):
    # x: (B, N, 3) contiguous; dist: (B, N) scratch pre-filled with +inf; out: (B, K) int64 zeros
    pid_b = tl.program_id(0)
    px = x_ptr + pid_b * N * 3
    pd = dist_ptr + pid_b * N
    cur = tl.zeros([], dtype=tl.int64)
    for i in range(1, K):
        c0 = tl.load(px + cur * 3 + 0)
        c1 = tl.load(px + cur * 3 + 1)
        c2 = tl.load(px + cur * 3 + 2)
        best_val = tl.zeros([], dtype=c0.dtype) - 1.0
        best_idx = tl.zeros([], dtype=tl.int64)
        for n0 in range(0, N, BLOCK):
            offs = n0 + tl.arange(0, BLOCK)
            mask = offs < N
            p0 = tl.load(px + offs * 3 + 0, mask=mask, other=0.0)
            p1 = tl.load(px + offs * 3 + 1, mask=mask, other=0.0)
            p2 = tl.load(px + offs * 3 + 2, mask=mask, other=0.0)
            e0 = p0 - c0
            e1 = p1 - c1
            e2 = p2 - c2
            dd = e0 * e0 + e1 * e1 + e2 * e2
            old = tl.load(pd + offs, mask=mask, other=0.0)
            new = tl.minimum(old, dd)
            tl.store(pd + offs, new, mask=mask)
            new = tl.where(mask, new, -1.0)
            bv, bi = tl.max(new, axis=0, return_indices=True, return_indices_tie_break_left=True)
            upd = bv > best_val  # strict: earlier blocks win ties (torch.argmax semantics)
            best_idx = tl.where(upd, bi.to(tl.int64) + n0, best_idx)
            best_val = tl.where(upd, bv, best_val)
        tl.debug_barrier()  # scratch writes visible before the next sweep
        cur = best_idx
        tl.store(out_ptr + pid_b * K + i, cur)


def _lengths(lengths, B: int, n: int, device) -> torch.Tensor:
    if lengths is None:
        return torch.full((B,), n, dtype=torch.int64, device=device)
    return lengths.to(device=device, dtype=torch.int64).contiguous()


def _check3(t: torch.Tensor, name: str) -> torch.Tensor:
    if t.dim() != 3 or t.shape[2] != 3:
        raise ValueError(f"triton kernels need {name} of shape (B, N, 3); got {tuple(t.shape)}")
    if t.dtype not in (torch.float32, torch.float64):
        t = t.float()
    return t.detach().contiguous()


def _argmin(a, b, alen, blen, block_a: int, block_b: int) -> torch.Tensor:
    B, Na, _ = a.shape
    out = torch.full((B, Na), -1, dtype=torch.int64, device=a.device)
    grid = (B, triton.cdiv(Na, block_a))
    _nn_argmin_kernel[grid](a, b, alen, blen, out, Na, b.shape[1], BLOCK_A=block_a, BLOCK_B=block_b)
    return out


def nn_indices(x, y, x_lengths=None, y_lengths=None, block_a: int = 64, block_b: int = 64):
    """Nearest-neighbour indices in both directions: (idx_xy (B,N), idx_yx (B,M)) int64, -1 padded."""
    x = _check3(x, "x")
    y = _check3(y, "y").to(x.dtype)
    B, N, _ = x.shape
    M = y.shape[1]
    xl = _lengths(x_lengths, B, N, x.device)
    yl = _lengths(y_lengths, B, M, x.device)
    return _argmin(x, y, xl, yl, block_a, block_b), _argmin(y, x, yl, xl, block_a, block_b)


def fps(x, k: int, block: int = 256) -> torch.Tensor:
    """Farthest point sampling, (B, k) int64, starting at index 0 (ties -> lowest index)."""
    x = _check3(x, "x")
    B, N, _ = x.shape
    dist = torch.full((B, N), float("inf"), dtype=x.dtype, device=x.device)
    out = torch.zeros((B, k), dtype=torch.int64, device=x.device)
    block = min(block, triton.next_power_of_2(N))
    _fps_kernel[(B,)](x, dist, out, N, k, BLOCK=block)
    return out
