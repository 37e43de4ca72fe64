// CNNX_VECTOR_CLONES: compile a function for 64-, 32- and 16-byte vectors and let the loader
// pick the widest the CPU has (GCC's target_clones: an ifunc resolved once at load; any x86-64
// CPU takes the default). Only for loops that move, add or select floats, or that do
// element-wise IEEE arithmetic (+ - * / sqrt) in a file compiled with -ffp-contract=off (the
// optimizers): every clone then gives the same bits, so the choice is invisible, and CNNX_ISA
// (which picks the GEMM kernels, whose sums do depend on the tile) has nothing to choose here. Elsewhere (other
// compilers, C libraries without ifunc, other CPUs) it expands to nothing.
#pragma once

#include <cstdint>  // defines __GLIBC__ on glibc systems

// ThreadSanitizer instruments the ifunc resolvers, which run before it is initialised (a crash at
// load), so a TSan build uses the default clone only.
#if defined(__SANITIZE_THREAD__)
#define CNNX_VECTOR_CLONES
#elif defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__GLIBC__)
#define CNNX_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CNNX_VECTOR_CLONES
#endif
