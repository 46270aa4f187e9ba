// Accuracy counts for the training loop's metrics (no gradients: metrics are not differentiated).
#pragma once
#include "common.h"

namespace cnnlite {

// y_true, y_pred: (n, k). The number of rows whose argmax over k agree, each argmax as NumPy's: the first maximum,
// and a NaN counts as the maximum (the first NaN). One pass on the calling thread: a batch is a few microseconds.
idx categorical_matches(const float* y_true, const float* y_pred, idx n, idx k);

}  // namespace cnnlite
