// Column reductions on row-major [rows, cols] blocks, used for bias and batch-norm gradients.
// column_sums splits rows into fixed chunks of kChunkRows whatever the thread count and adds
// the chunk partials in chunk order, so a bias gradient is bit-identical on 1 or 2 threads.
#pragma once

#include <cstdint>

namespace cnnx::kernels {

// out[j] = sum_i a[i*cols + j]
void column_sums(const float* a, std::int64_t rows, std::int64_t cols, float* out);

}  // namespace cnnx::kernels
