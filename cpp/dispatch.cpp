#include "dispatch.h"

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <string>

namespace cnnlite {

namespace {

Isa detect() {
#ifdef CNNLITE_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq"))
    return Isa::kAvx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::kAvx2;
#endif
  return Isa::kGeneric;
}

std::atomic<int>& cap() {
  static std::atomic<int> level{static_cast<int>(cpu_isa_level())};
  return level;
}

}  // namespace

const char* isa_name(Isa level) {
  switch (level) {
    case Isa::kGeneric: return "generic";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
  }
  throw std::invalid_argument("unknown ISA level " + std::to_string(static_cast<int>(level)));
}

Isa isa_from_name(const char* name) {
  const std::string s = name ? name : "";
  for (Isa level : {Isa::kGeneric, Isa::kAvx2, Isa::kAvx512})
    if (s == isa_name(level)) return level;
  throw std::invalid_argument("ISA must be 'avx512', 'avx2' or 'generic', got '" + s + "'");
}

Isa cpu_isa_level() {
  static const Isa level = detect();
  return level;
}

Isa isa() {
  const int level = std::min(static_cast<int>(cpu_isa_level()), cap().load(std::memory_order_relaxed));
  return static_cast<Isa>(level);
}

Isa set_isa(Isa level) {
  isa_name(level);  // rejects values outside the enum
  if (static_cast<int>(level) > static_cast<int>(cpu_isa_level()))
    throw std::invalid_argument(std::string("this CPU does not support ISA '") + isa_name(level) + "' (its level is '" +
                                isa_name(cpu_isa_level()) + "')");
  return static_cast<Isa>(cap().exchange(static_cast<int>(level)));
}

}  // namespace cnnlite
