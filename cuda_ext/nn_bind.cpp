// pybind11 binding of cuda_ext/nn_kernel.cu: tensor checks, current stream, output allocation.
#include <torch/extension.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>

template <typename T>
cudaError_t launch_nn_argmin(const T* a, const T* b, const int64_t* a_len, const int64_t* b_len,
                             int64_t* out, int64_t B, int64_t Na, int64_t Nb, void* stream);
template <typename T>
cudaError_t launch_fps(const T* x, T* dist, int64_t* out, int64_t B, int64_t N, int64_t K, void* stream);

static void check_cloud(const torch::Tensor& t, const char* name) {
  TORCH_CHECK(t.is_cuda(), name, " must be a CUDA tensor (inputs must be CUDA tensors)");
  TORCH_CHECK(t.dim() == 3 && t.size(2) == 3, name, " must have shape (B, N, 3)");
  TORCH_CHECK(t.scalar_type() == torch::kFloat32 || t.scalar_type() == torch::kFloat64,
              name, " must be float32 or float64");
}

static torch::Tensor argmin_dir(torch::Tensor a, torch::Tensor b, torch::Tensor al, torch::Tensor bl) {
  auto out = torch::empty({a.size(0), a.size(1)}, a.options().dtype(torch::kInt64));
  void* stream = (void*)c10::cuda::getCurrentCUDAStream().stream();
  cudaError_t err;
  if (a.scalar_type() == torch::kFloat64) {
    err = launch_nn_argmin<double>(a.data_ptr<double>(), b.data_ptr<double>(), al.data_ptr<int64_t>(),
                                   bl.data_ptr<int64_t>(), out.data_ptr<int64_t>(), a.size(0), a.size(1),
                                   b.size(1), stream);
  } else {
    err = launch_nn_argmin<float>(a.data_ptr<float>(), b.data_ptr<float>(), al.data_ptr<int64_t>(),
                                  bl.data_ptr<int64_t>(), out.data_ptr<int64_t>(), a.size(0), a.size(1),
                                  b.size(1), stream);
  }
  TORCH_CHECK(err == cudaSuccess, "nn_argmin kernel launch failed: ", cudaGetErrorString(err));
  return out;
}

// (idx_xy (B,N), idx_yx (B,M)) int64, -1 at padded positions; lengths (B,) int64 CUDA tensors.
std::vector<torch::Tensor> nn_indices(torch::Tensor x, torch::Tensor y, torch::Tensor x_len,
                                      torch::Tensor y_len) {
  check_cloud(x, "x");
  check_cloud(y, "y");
  TORCH_CHECK(x.scalar_type() == y.scalar_type() && x.size(0) == y.size(0), "x and y must agree in B, dtype");
  x = x.contiguous(); y = y.contiguous();
  x_len = x_len.to(x.device(), torch::kInt64).contiguous();
  y_len = y_len.to(x.device(), torch::kInt64).contiguous();
  return {argmin_dir(x, y, x_len, y_len), argmin_dir(y, x, y_len, x_len)};
}

// Farthest point sampling (B, K) int64 starting at index 0.
torch::Tensor fps(torch::Tensor x, int64_t k) {
  check_cloud(x, "x");
  TORCH_CHECK(k >= 1 && k <= x.size(1), "k must lie in [1, N]");
  x = x.contiguous();
  auto dist = torch::full({x.size(0), x.size(1)}, INFINITY, x.options());
  auto out = torch::zeros({x.size(0), k}, x.options().dtype(torch::kInt64));
  void* stream = (void*)c10::cuda::getCurrentCUDAStream().stream();
  cudaError_t err;
  if (x.scalar_type() == torch::kFloat64) {
    err = launch_fps<double>(x.data_ptr<double>(), dist.data_ptr<double>(), out.data_ptr<int64_t>(),
                             x.size(0), x.size(1), k, stream);
  } else {
    err = launch_fps<float>(x.data_ptr<float>(), dist.data_ptr<float>(), out.data_ptr<int64_t>(),
                            x.size(0), x.size(1), k, stream);
  }
  TORCH_CHECK(err == cudaSuccess, "fps kernel launch failed: ", cudaGetErrorString(err));
  return out;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("nn_indices_raw", &nn_indices, "nearest-neighbour indices in both directions (CUDA)");
  m.def("fps", &fps, "farthest point sampling (CUDA)");
}
