#include "metrics.h"

#include <stdexcept>
#include <string>

namespace cnnlite {

namespace {

// Rows whose argmax run side by side: each row's running maximum is a chain of dependent selects, so several rows
// at once keep the core busy.
constexpr idx kRowGroup = 8;

// best[i] = NumPy's argmax of row i of `rows` (R rows of k): NaN compares as the largest value (the first NaN
// wins), ties keep the first index. Without NaNs each element is a select (no branch to mispredict on random
// scores); a row holding a NaN is rescanned.
template <idx R>
inline void rows_argmax(idx* best, const float* rows, idx k) {
  float best_value[R];
  bool nan[R];
  for (idx i = 0; i < R; ++i) {
    best[i] = 0;
    best_value[i] = rows[i * k];
    nan[i] = best_value[i] != best_value[i];
  }
  for (idx j = 1; j < k; ++j)
    for (idx i = 0; i < R; ++i) {
      const float v = rows[i * k + j];
      const bool greater = v > best_value[i];
      best_value[i] = greater ? v : best_value[i];
      best[i] = greater ? j : best[i];
      nan[i] |= v != v;
    }
  for (idx i = 0; i < R; ++i)
    if (nan[i])
      for (idx j = 0; j < k; ++j)
        if (rows[i * k + j] != rows[i * k + j]) {
          best[i] = j;
          break;
        }
}

template <idx R>
inline idx matches_in(const float* y_true, const float* y_pred, idx k) {
  idx a[R], b[R], matches = 0;
  rows_argmax<R>(a, y_true, k);
  rows_argmax<R>(b, y_pred, k);
  for (idx i = 0; i < R; ++i) matches += a[i] == b[i];
  return matches;
}

}  // namespace

idx categorical_matches(const float* y_true, const float* y_pred, idx n, idx k) {
  if (n < 0 || k < 1)
    throw std::invalid_argument("categorical_matches: need n >= 0 and k >= 1, got n=" + std::to_string(n) +
                                " k=" + std::to_string(k));
  idx matches = 0, r = 0;
  for (; r + kRowGroup <= n; r += kRowGroup) matches += matches_in<kRowGroup>(y_true + r * k, y_pred + r * k, k);
  for (; r < n; ++r) matches += matches_in<1>(y_true + r * k, y_pred + r * k, k);
  return matches;
}

}  // namespace cnnlite
