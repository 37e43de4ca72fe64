// CNNX_API marks what the shared library exports: the public API. The library is compiled with
// hidden visibility, so kernels and layer internals stay private to it (a consumer cannot come
// to depend on them, and the dynamic symbol table holds only the API).
#pragma once

#if defined(_WIN32)
#define CNNX_API
#elif defined(__GNUC__) || defined(__clang__)
#define CNNX_API __attribute__((visibility("default")))
#else
#define CNNX_API
#endif
