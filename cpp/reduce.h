// The ordered sum that combines per-shard weight-gradient partials (cnnlite/engine/plan.py, cnnlite.distributed).
// A batch's weight gradient is the sum of its reduction shards' gradients added in shard order; whether the shards
// were computed by one process or by several, this one function adds them, so the bits are the same.
#pragma once
#include "common.h"

namespace cnnlite {

// total (size) = parts[0] + parts[1] + ... + parts[count - 1], parts (count, size), added left to right per element
// (total = parts[0] when count == 1). count >= 1. No backward: the engine never differentiates through it.
void partials_sum(float* total, const float* parts, idx count, idx size);

}  // namespace cnnlite
