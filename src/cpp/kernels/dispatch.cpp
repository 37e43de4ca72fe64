// ISA selection for the GEMM: which micro-kernel gemm() uses.
//
// Detection runs once, on first use (a function-local static, so it is thread-safe and needs no
// load-order guarantees). An ISA counts as supported only if the CPU reports it *and* the OS
// saves its registers (XCR0). We read CPUID and XCR0 directly rather than trust
// __builtin_cpu_supports, whose XCR0 handling differs between compilers and versions, and so
// MSVC builds work too. The CNNX_ISA environment
// variable (avx512|avx2|generic) can lower the choice, e.g. to reproduce a user's machine;
// asking for more than the CPU has, or an unknown name, keeps the best supported ISA and prints
// one line to stderr -- a bad environment variable must never stop a program.
//
// Threading: the active ISA is an atomic, read once per gemm() call. set_isa() is meant for
// tests and benchmarks; changing it while another thread runs a gemm affects only later calls.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "cnnx/error.hpp"
#include "kernels/gemm.hpp"

#if defined(__x86_64__) || defined(_M_X64)
#define CNNX_X86 1
#if defined(_MSC_VER)
#include <immintrin.h>
#include <intrin.h>
#else
#include <cpuid.h>
#endif
#endif

namespace cnnx::kernels {
namespace {

#if CNNX_X86
// XCR0: which register files the OS saves on context switch.
std::uint64_t read_xcr0() {
#if defined(_MSC_VER)
  return _xgetbv(0);
#else
  std::uint32_t eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<std::uint64_t>(edx) << 32) | eax;
#endif
}

Isa detect_isa() {
  int r[4] = {0, 0, 0, 0};  // eax, ebx, ecx, edx
#if defined(_MSC_VER)
  __cpuid(r, 1);
#else
  __cpuid(1, r[0], r[1], r[2], r[3]);
#endif
  const bool osxsave = (r[2] >> 27) & 1;
  const bool fma = (r[2] >> 12) & 1;
  if (!osxsave) return Isa::generic;  // xgetbv itself would fault
  const std::uint64_t xcr0 = read_xcr0();
  const bool ymm_state = (xcr0 & 0x6) == 0x6;                 // SSE + AVX upper halves
  const bool zmm_state = ymm_state && (xcr0 & 0xe0) == 0xe0;  // opmask + both zmm halves
#if defined(_MSC_VER)
  __cpuidex(r, 7, 0);
#else
  __cpuid_count(7, 0, r[0], r[1], r[2], r[3]);
#endif
  const bool avx2 = (r[1] >> 5) & 1;
  const bool avx512f = (r[1] >> 16) & 1;
  if (avx512f && fma && zmm_state) return Isa::avx512;
  if (avx2 && fma && ymm_state) return Isa::avx2;
  return Isa::generic;
}
#else
Isa detect_isa() { return Isa::generic; }
#endif

bool parse_isa(const char* s, Isa* out) {
  for (Isa isa : {Isa::generic, Isa::avx2, Isa::avx512}) {
    if (std::strcmp(s, isa_name(isa)) == 0) {
      *out = isa;
      return true;
    }
  }
  return false;
}

Isa initial_isa() {
  const Isa best = best_supported_isa();
  const char* env = std::getenv("CNNX_ISA");
  if (env == nullptr || *env == '\0') return best;
  Isa wanted;
  if (!parse_isa(env, &wanted)) {
    std::fprintf(stderr, "cnnx: ignoring CNNX_ISA=%s (expected avx512, avx2 or generic); using %s\n", env,
                 isa_name(best));
    return best;
  }
  if (static_cast<int>(wanted) > static_cast<int>(best)) {
    std::fprintf(stderr, "cnnx: CNNX_ISA=%s is not supported by this CPU; using %s\n", env, isa_name(best));
    return best;
  }
  return wanted;
}

std::atomic<Isa>& active_slot() {
  static std::atomic<Isa> slot{initial_isa()};
  return slot;
}

}  // namespace

Isa best_supported_isa() {
  static const Isa best = detect_isa();
  return best;
}

Isa active_isa() { return active_slot().load(std::memory_order_relaxed); }

void set_isa(Isa isa) {
  const Isa best = best_supported_isa();
  if (static_cast<int>(isa) < 0 || static_cast<int>(isa) > static_cast<int>(best)) {
    throw ValueError(std::string("set_isa: expected an ISA this CPU supports (at most ") + isa_name(best) +
                     "), received " + isa_name(isa));
  }
  active_slot().store(isa, std::memory_order_relaxed);
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::generic: return "generic";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
  }
  return "unknown";
}

}  // namespace cnnx::kernels
