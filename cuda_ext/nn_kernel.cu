// CUDA kernels for mesc3d.ops: nearest-neighbour argmin (one Chamfer direction) and FPS.
// Deliberately free of torch headers (nvcc compiles this file in ~1 s); nn_bind.cpp does the
// tensor checks and passes raw pointers.  Conventions match mesc3d/ops (see cuda_ext/README.md):
// difference-form squared distances, ties -> lowest index, -1 at padded query positions.
#include <cuda_runtime.h>
#include <stdint.h>

namespace {

constexpr int NN_THREADS = 256;  // query points per block
constexpr int NN_TILE = 512;     // target points staged in shared memory per step
constexpr int FPS_THREADS = 512;

template <typename T>
__global__ void nn_argmin_kernel(const T* __restrict__ a, const T* __restrict__ b,
                                 const int64_t* __restrict__ a_len, const int64_t* __restrict__ b_len,
                                 int64_t* __restrict__ out, int64_t Na, int64_t Nb) {
  // a: (B, Na, 3), b: (B, Nb, 3) contiguous; out: (B, Na); grid (ceil(Na/NN_THREADS), B)
  __shared__ T tile[NN_TILE * 3];
  const int64_t bi = blockIdx.y;
  const int64_t i = (int64_t)blockIdx.x * NN_THREADS + threadIdx.x;
  const int64_t na = a_len[bi], nb = b_len[bi];
  const bool active = i < na;
  T a0 = 0, a1 = 0, a2 = 0;
  if (active) {
    const T* p = a + (bi * Na + i) * 3;
    a0 = p[0]; a1 = p[1]; a2 = p[2];
  }
  T best = (T)INFINITY;
  int64_t best_j = 0;
  const T* pb = b + bi * Nb * 3;
  for (int64_t j0 = 0; j0 < nb; j0 += NN_TILE) {
    const int64_t cnt = (nb - j0 < NN_TILE) ? (nb - j0) : NN_TILE;
    __syncthreads();
    for (int64_t t = threadIdx.x; t < cnt * 3; t += NN_THREADS) tile[t] = pb[j0 * 3 + t];
    __syncthreads();
    if (active) {
      for (int64_t t = 0; t < cnt; ++t) {
        const T d0 = a0 - tile[t * 3 + 0], d1 = a1 - tile[t * 3 + 1], d2 = a2 - tile[t * 3 + 2];
        const T d = d0 * d0 + d1 * d1 + d2 * d2;
        if (d < best) { best = d; best_j = j0 + t; }  // strict: lowest index wins ties
      }
    }
  }
  if (i < Na) out[bi * Na + i] = active ? best_j : -1;
}

template <typename T>
__global__ void fps_kernel(const T* __restrict__ x, T* __restrict__ dist, int64_t* __restrict__ out,
                           int64_t N, int64_t K) {
  // x: (B, N, 3) contiguous; dist: (B, N) scratch filled with +inf; out: (B, K); one block per cloud
  __shared__ T s_val[FPS_THREADS];
  __shared__ int64_t s_idx[FPS_THREADS];
  const int64_t bi = blockIdx.x;
  const T* px = x + bi * N * 3;
  T* pd = dist + bi * N;
  int64_t cur = 0;
  if (threadIdx.x == 0) out[bi * K] = 0;
  for (int64_t k = 1; k < K; ++k) {
    const T c0 = px[cur * 3 + 0], c1 = px[cur * 3 + 1], c2 = px[cur * 3 + 2];
    T bv = (T)-1;
    int64_t bj = 0;
    for (int64_t j = threadIdx.x; j < N; j += FPS_THREADS) {  // increasing j per thread
      const T e0 = px[j * 3 + 0] - c0, e1 = px[j * 3 + 1] - c1, e2 = px[j * 3 + 2] - c2;
      T d = e0 * e0 + e1 * e1 + e2 * e2;
      const T old = pd[j];
      d = d < old ? d : old;
      pd[j] = d;
      if (d > bv) { bv = d; bj = j; }
    }
    s_val[threadIdx.x] = bv;
    s_idx[threadIdx.x] = bj;
    __syncthreads();
    for (int s = FPS_THREADS / 2; s > 0; s >>= 1) {  // max, ties -> lowest index (torch.argmax)
      if (threadIdx.x < s) {
        const T v2 = s_val[threadIdx.x + s];
        const int64_t j2 = s_idx[threadIdx.x + s];
        if (v2 > s_val[threadIdx.x] || (v2 == s_val[threadIdx.x] && j2 < s_idx[threadIdx.x])) {
          s_val[threadIdx.x] = v2;
          s_idx[threadIdx.x] = j2;
        }
      }
      __syncthreads();
    }
    cur = s_idx[0];
    if (threadIdx.x == 0) out[bi * K + k] = cur;
    __syncthreads();
  }
}

}  // namespace

// Host launchers (C linkage-free, declared in nn_bind.cpp).  `stream` is a cudaStream_t.
template <typename T>
cudaError_t launch_nn_argmin(const T* a, const T* b, const int64_t* a_len, const int64_t* b_len,
                             int64_t* out, int64_t B, int64_t Na, int64_t Nb, void* stream) {
  dim3 grid((unsigned)((Na + NN_THREADS - 1) / NN_THREADS), (unsigned)B);
  nn_argmin_kernel<T><<<grid, NN_THREADS, 0, (cudaStream_t)stream>>>(a, b, a_len, b_len, out, Na, Nb);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_fps(const T* x, T* dist, int64_t* out, int64_t B, int64_t N, int64_t K, void* stream) {
  fps_kernel<T><<<(unsigned)B, FPS_THREADS, 0, (cudaStream_t)stream>>>(x, dist, out, N, K);
  return cudaGetLastError();
}

template cudaError_t launch_nn_argmin<float>(const float*, const float*, const int64_t*, const int64_t*,
                                             int64_t*, int64_t, int64_t, int64_t, void*);
template cudaError_t launch_nn_argmin<double>(const double*, const double*, const int64_t*,
                                              const int64_t*, int64_t*, int64_t, int64_t, int64_t, void*);
template cudaError_t launch_fps<float>(const float*, float*, int64_t*, int64_t, int64_t, int64_t, void*);
template cudaError_t launch_fps<double>(const double*, double*, int64_t*, int64_t, int64_t, int64_t, void*);
