// Run-time CPU dispatch shared by the float kernel and the Loihi engine.
#pragma once

#include <cstdlib>

namespace ahpsim {

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
// AVX2 where the CPU has it, unless AHPSIM_DISABLE_AVX2 is set (the tests compare both paths).
inline bool cpu_has_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2") && !std::getenv("AHPSIM_DISABLE_AVX2");
  return yes;
}
#endif

}  // namespace ahpsim
