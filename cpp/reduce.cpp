#include "reduce.h"

#include <algorithm>
#include <stdexcept>

#include "parallel.h"

namespace cnnlite {

void partials_sum(float* total, const float* parts, idx count, idx size) {
  if (count < 1 || size < 0) throw std::invalid_argument("partials_sum: need count >= 1 and size >= 0");
  // Elements are independent: threads take disjoint slices, each added in part order (no FMA to contract).
  parallel_for_elements(size, [=](idx begin, idx end) {
    std::copy(parts + begin, parts + end, total + begin);
    add_in_order(total + begin, parts + size + begin, count - 1, size, end - begin);
  });
}

}  // namespace cnnlite
