// Row gather for shuffled mini-batches: copies the rows of a C-contiguous array named by an index list.
#pragma once
#include "common.h"

namespace cnnlite {

// out (n_rows, row_bytes) = src[rows[i]] for each i, src (n_src, row_bytes) as raw bytes; every rows[i] must lie in
// [0, n_src) (else std::invalid_argument naming the first bad position). Overwrites all of out. Blocks of rows
// are copied in parallel.
void take_rows(void* out, const void* src, const int64_t* rows, idx n_rows, idx n_src, idx row_bytes);

}  // namespace cnnlite
