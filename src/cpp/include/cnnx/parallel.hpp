// Thread control for the whole core. cnnx uses OpenMP at one level only: a kernel that is
// already inside a parallel region runs serially. Without OpenMP everything runs on one thread.
#pragma once

#include <cstdint>

#include "cnnx/export.hpp"

namespace cnnx {

// The most threads set_num_threads accepts. Each thread of a team is an OS thread with its own
// stack and its own per-layer workspaces (a Conv2D keeps one im2col panel per thread), and
// nothing gains from more threads than cores: 1024 is above the hardware threads of the largest
// machines (a 2-socket, 2 x 192-core, SMT-2 server has 768) while refusing a typo such as 10**6,
// which would otherwise be accepted and fail much later, in the first parallel kernel.
constexpr std::int64_t kMaxThreads = 1024;

// Number of threads the next kernels will use (>= 1). Defaults to OpenMP's default.
CNNX_API int get_num_threads();
// 1 <= n <= kMaxThreads; throws cnnx::ValueError otherwise.
CNNX_API void set_num_threads(std::int64_t n);

}  // namespace cnnx
