// Inverted dropout with a counter-based mask: element i of call (seed, step) is kept iff u_i >= rate, where
// u_i = (mix64(key + golden * (offset + i + 1)) >> 11) / 2^53, key = mix64(seed + golden * mix64(step + golden)) and mix64 is
// SplitMix64's output function. The mask depends on (seed, step, i) only - not on the thread count or the ISA - and
// the backward pass regenerates it exactly. `offset` is the index of x[0] in the whole masked tensor, so a process
// holding rows [r0, r1) of a batch (cnnlite.distributed) draws exactly those rows' mask.
#pragma once
#include <cstdint>

#include "common.h"

namespace cnnlite {

// y, x: (n,). y = x / (1 - rate) where kept, else 0. rate in [0, 1) (else std::invalid_argument); rate 0 copies x.
void dropout_forward(float* y, const float* x, idx n, double rate, uint64_t seed, uint64_t step, uint64_t offset = 0);
// dx, dy: (n,). dx = dy / (1 - rate) where kept, else 0 (overwritten), the same mask as the forward call.
void dropout_backward(float* dx, const float* dy, idx n, double rate, uint64_t seed, uint64_t step,
                      uint64_t offset = 0);

}  // namespace cnnlite
