"""mesc3d.ops: fast torch paths vs their naive twins (values, indices, gradients), dispatch errors."""

from __future__ import annotations

import pytest
import torch

from mesc3d import ops
from mesc3d.ops.dispatch import BackendUnavailableError
from mesc3d.ops.knn import knn_torch
from mesc3d.ops.nn_dist import nearest_sq_dist_torch


def _rand(*shape, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=g, dtype=dtype)


def _assert_same(fast, naive, check_idx=True):
    d_xy, i_xy, d_yx, i_yx = fast
    n_xy, j_xy, n_yx, j_yx = naive
    torch.testing.assert_close(d_xy, n_xy, rtol=0, atol=1e-12)
    torch.testing.assert_close(d_yx, n_yx, rtol=0, atol=1e-12)
    assert i_xy.dtype == torch.long and i_yx.dtype == torch.long
    if check_idx:
        assert torch.equal(i_xy, j_xy) and torch.equal(i_yx, j_yx)


def _grads(fn, x, y, **kw):
    x = x.clone().requires_grad_(True)
    y = y.clone().requires_grad_(True)
    d_xy, _, d_yx, _ = fn(x, y, **kw)
    w1 = torch.linspace(0.5, 1.5, d_xy.numel(), dtype=x.dtype).view_as(d_xy)
    w2 = torch.linspace(1.5, 0.5, d_yx.numel(), dtype=x.dtype).view_as(d_yx)
    ((d_xy * w1).sum() + (d_yx * w2).sum()).backward()
    return x.grad, y.grad


@pytest.mark.parametrize("B,N,M", [(3, 57, 41), (2, 1, 9), (2, 8, 1), (1, 1, 1), (4, 130, 130)])
@pytest.mark.parametrize("max_block", [7, 1 << 20])
def test_nn_matches_naive_random(B, N, M, max_block):
    x, y = _rand(B, N, 3, seed=1), _rand(B, M, 3, seed=2)
    fast = nearest_sq_dist_torch(x, y, max_block=max_block)
    _assert_same(fast, ops.nearest_sq_dist_naive(x, y))
    gx, gy = _grads(nearest_sq_dist_torch, x, y, max_block=max_block)
    hx, hy = _grads(ops.nearest_sq_dist_naive, x, y)
    torch.testing.assert_close(gx, hx, rtol=0, atol=1e-12)
    torch.testing.assert_close(gy, hy, rtol=0, atol=1e-12)


def test_nn_float32_close_to_float64_reference():
    x, y = _rand(2, 300, 3, seed=3, dtype=torch.float32), _rand(2, 280, 3, seed=4, dtype=torch.float32)
    d_xy, i_xy, d_yx, i_yx = ops.nearest_sq_dist(x, y)
    ref = ops.nearest_sq_dist_naive(x.double(), y.double())
    torch.testing.assert_close(d_xy.double(), ref[0], rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(d_yx.double(), ref[2], rtol=1e-5, atol=1e-7)
    assert (i_xy == ref[1]).float().mean() > 0.99
    # float64 index search gives the reference indices even for float32 clouds
    exact = ops.nearest_sq_dist(x, y, index_dtype=torch.float64)
    assert torch.equal(exact[1], ref[1]) and torch.equal(exact[3], ref[3])
    assert exact[0].dtype == torch.float32


def test_nn_ragged_lengths():
    x, y = _rand(3, 20, 3, seed=5), _rand(3, 15, 3, seed=6)
    xl, yl = torch.tensor([20, 1, 7]), torch.tensor([3, 15, 1])
    fast = nearest_sq_dist_torch(x, y, xl, yl, max_block=5)
    naive = ops.nearest_sq_dist_naive(x, y, xl, yl)
    _assert_same(fast, naive)
    d_xy, i_xy, d_yx, i_yx = fast
    # padded positions: distance 0, index -1; valid ones equal the unpadded per-cloud result
    assert (i_xy[1, 1:] == -1).all() and (d_xy[1, 1:] == 0).all() and (i_yx[0, 3:] == -1).all()
    for b in range(3):
        sub = ops.nearest_sq_dist_naive(x[b:b + 1, :xl[b]], y[b:b + 1, :yl[b]])
        assert torch.equal(i_xy[b, :xl[b]], sub[1][0]) and torch.equal(i_yx[b, :yl[b]], sub[3][0])
    gx, gy = _grads(nearest_sq_dist_torch, x, y, x_lengths=xl, y_lengths=yl)
    hx, hy = _grads(ops.nearest_sq_dist_naive, x, y, x_lengths=xl, y_lengths=yl)
    torch.testing.assert_close(gx, hx, rtol=0, atol=1e-12)
    torch.testing.assert_close(gy, hy, rtol=0, atol=1e-12)
    assert (gx[1, 1:] == 0).all() and (gy[0, 3:] == 0).all()


def test_nn_degenerate_duplicates_and_identical():
    x = _rand(2, 30, 3, seed=7)
    y = torch.cat([x[:, :10], x[:, :10], x[:, 5:15]], 1)  # exact duplicates of x's points
    for fn in (ops.nearest_sq_dist, ops.nearest_sq_dist_naive):
        d_xy, _, d_yx, _ = fn(x, y)
        assert (d_yx == 0).all()  # every y is exactly some x
        assert (d_xy[:, :15] == 0).all()
    _assert_same(nearest_sq_dist_torch(x, y), ops.nearest_sq_dist_naive(x, y))
    gx, gy = _grads(ops.nearest_sq_dist, x, y)
    hx, hy = _grads(ops.nearest_sq_dist_naive, x, y)
    torch.testing.assert_close(gx, hx, rtol=0, atol=1e-12)
    torch.testing.assert_close(gy, hy, rtol=0, atol=1e-12)
    # all points identical (float32 too): exactly zero distances and gradients, no NaN
    for dt in (torch.float32, torch.float64):
        same = torch.full((2, 17, 3), 0.3, dtype=dt)
        other = torch.full((2, 5, 3), 0.3, dtype=dt)
        gx, gy = _grads(ops.nearest_sq_dist, same, other)
        d_xy, i_xy, d_yx, i_yx = ops.nearest_sq_dist(same, other)
        assert (d_xy == 0).all() and (d_yx == 0).all()
        assert (gx == 0).all() and (gy == 0).all()
        assert ((i_xy >= 0) & (i_xy < 5)).all() and ((i_yx >= 0) & (i_yx < 17)).all()


def test_nn_gradcheck_float64():
    x = _rand(2, 6, 3, seed=8).requires_grad_(True)
    y = _rand(2, 5, 3, seed=9).requires_grad_(True)

    def f(a, b):
        d_xy, _, d_yx, _ = ops.nearest_sq_dist(a, b)
        return d_xy, d_yx

    assert torch.autograd.gradcheck(f, (x, y), eps=1e-6, atol=1e-8)
    xl, yl = torch.tensor([6, 2]), torch.tensor([1, 5])
    assert torch.autograd.gradcheck(lambda a, b: ops.nearest_sq_dist(a, b, xl, yl)[0::2], (x, y),
                                    eps=1e-6, atol=1e-8)


def test_nn_input_validation():
    x = torch.rand(2, 5, 3)
    with pytest.raises(ValueError, match=r"\(B, M, D\)"):
        ops.nearest_sq_dist(x, torch.rand(3, 5, 3))
    with pytest.raises(ValueError, match="x_lengths"):
        ops.nearest_sq_dist(x, x, x_lengths=torch.tensor([0, 5]))
    with pytest.raises(ValueError):
        ops.nearest_sq_dist(torch.rand(5, 3), x)
    with pytest.raises(TypeError):
        ops.nearest_sq_dist(x, x.double())


@pytest.mark.parametrize("B,N,k", [(3, 50, 10), (2, 1, 1), (1, 64, 64), (2, 200, 33)])
def test_fps_matches_naive(B, N, k):
    x = _rand(B, N, 3, seed=10, dtype=torch.float32)
    a = ops.farthest_point_sample(x, k)
    b = ops.farthest_point_sample_naive(x, k)
    assert a.shape == (B, k) and a.dtype == torch.long
    assert torch.equal(a, b) and (a[:, 0] == 0).all()
    if k == N:
        assert torch.equal(a.sort(1).values, torch.arange(N).expand(B, N))


def test_fps_degenerate():
    same = torch.zeros(2, 10, 3)
    assert torch.equal(ops.farthest_point_sample(same, 4), torch.zeros(2, 4, dtype=torch.long))
    assert torch.equal(ops.farthest_point_sample_naive(same, 4), torch.zeros(2, 4, dtype=torch.long))
    x = _rand(1, 6, 3, seed=11, dtype=torch.float32)
    dup = torch.cat([x, x], 1)  # (1, 12, 3)
    a = ops.farthest_point_sample(dup, 8)
    assert torch.equal(a, ops.farthest_point_sample_naive(dup, 8))
    assert len(set(a[0, :6].tolist())) == 6 and (a[0, :6] < 6).all()  # lowest index among duplicates
    with pytest.raises(ValueError, match=r"k must be"):
        ops.farthest_point_sample(x, 7)
    with pytest.raises(ValueError, match=r"\(B, N, D\)"):
        ops.farthest_point_sample(x[0], 2)


@pytest.mark.parametrize("max_block", [11, 1 << 20])
def test_knn_matches_naive(max_block):
    x = _rand(3, 80, 3, seed=12, dtype=torch.float32)
    c = x[:, :9] + 0.01
    a = knn_torch(x, c, 16, max_block=max_block)
    b = ops.knn_naive(x, c, 16)
    assert a.shape == (3, 9, 16) and torch.equal(a, b)
    assert torch.equal(ops.knn(x, c, 16), b)
    d = ((c[:, :, None] - torch.gather(x[:, None].expand(-1, 9, -1, -1), 2,
                                        a[..., None].expand(-1, -1, -1, 3))) ** 2).sum(-1)
    assert (d[..., 1:] >= d[..., :-1]).all()  # sorted by distance
    assert torch.equal(a[:, :, 0], torch.arange(9).expand(3, 9))  # own point is the nearest


def test_knn_degenerate():
    x = torch.zeros(2, 12, 3)
    a, b = ops.knn(x, x[:, :3], 5), ops.knn_naive(x, x[:, :3], 5)
    assert a.shape == b.shape == (2, 3, 5)
    assert ((a >= 0) & (a < 12)).all() and torch.equal(b, torch.arange(5).expand(2, 3, 5))
    for b_ in range(2):  # distinct indices per centre
        assert all(len(set(row.tolist())) == 5 for row in a[b_])
    one = torch.rand(1, 1, 3)
    assert torch.equal(ops.knn(one, one, 1), torch.zeros(1, 1, 1, dtype=torch.long))
    with pytest.raises(ValueError, match="k must be"):
        ops.knn(one, one, 2)


def test_dispatch_backends(monkeypatch):
    x, y = torch.rand(1, 5, 3), torch.rand(1, 4, 3)
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(BackendUnavailableError, match="triton"):
        ops.nearest_sq_dist(x, y, backend="triton")
    with pytest.raises(BackendUnavailableError, match="cuda"):
        ops.farthest_point_sample(x, 2, backend="cuda")
    with pytest.raises(ValueError, match="not one of"):
        ops.nearest_sq_dist(x, y, backend="opencl")
    monkeypatch.setenv("MESC3D_OPS_BACKEND", "cuda")
    with pytest.raises(BackendUnavailableError):
        ops.nearest_sq_dist(x, y)
    monkeypatch.setenv("MESC3D_OPS_BACKEND", "torch")
    assert ops.nearest_sq_dist(x, y)[0].shape == (1, 5)
    monkeypatch.setenv("MESC3D_OPS_BACKEND", "auto")  # CPU tensors -> torch
    assert torch.equal(ops.nearest_sq_dist(x, y)[1], ops.nearest_sq_dist_naive(x, y)[1])


def test_kdtree_backend_matches_naive():
    x, y = _rand(3, 70, 3, seed=13), _rand(3, 50, 3, seed=14)
    _assert_same(ops.nearest_sq_dist(x, y, backend="kdtree"), ops.nearest_sq_dist_naive(x, y))
    xl, yl = torch.tensor([70, 1, 9]), torch.tensor([2, 50, 1])
    _assert_same(ops.nearest_sq_dist(x, y, xl, yl, backend="kdtree"), ops.nearest_sq_dist_naive(x, y, xl, yl))
    gx, gy = _grads(lambda a, b: ops.nearest_sq_dist(a, b, backend="kdtree"), x, y)
    hx, hy = _grads(ops.nearest_sq_dist_naive, x, y)
    torch.testing.assert_close(gx, hx, rtol=0, atol=1e-12)
    torch.testing.assert_close(gy, hy, rtol=0, atol=1e-12)
    dup = torch.cat([x[:, :10], x[:, :10]], 1).float()  # ties: any index, same (zero) distances
    d_xy, i_xy, d_yx, _ = ops.nearest_sq_dist(dup, x.float(), backend="kdtree")
    assert (d_xy == 0).all() and d_xy.dtype == torch.float32
    assert torch.equal(d_yx, ops.nearest_sq_dist_naive(dup, x.float())[2])
