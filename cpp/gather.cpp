#include "gather.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "parallel.h"

namespace cnnlite {

namespace {

// How many rows ahead the copy loop prefetches: each random row starts a fresh DRAM stream. Measured on MNIST
// batches with the L3 flushed between calls: np.take 550 us, this 525 us at 1 thread and 430 us at 2; with the rows
// already in cache 480 -> 200 us (1 thread). A contiguous copy of the same bytes takes about 260 us.
constexpr idx kPrefetchRows = 8;
// Rows are copied in blocks of this many bytes' worth (fixed: a shuffled MNIST batch, 1000 x 3 KiB, makes 12 blocks
// that two threads share); small gathers stay on the calling thread.
constexpr idx kBlockBytes = 256 * 1024;
constexpr idx kLine = 64;

inline void prefetch_row(const char* row, idx bytes) {
  for (idx off = 0; off < bytes; off += kLine) __builtin_prefetch(row + off, 0, 0);
}

}  // namespace

void take_rows(void* out, const void* src, const int64_t* rows, idx n_rows, idx n_src, idx row_bytes) {
  if (n_rows < 0 || n_src < 0 || row_bytes < 0)
    throw std::invalid_argument("take_rows: sizes must be >= 0, got n_rows=" + std::to_string(n_rows) +
                                " n_src=" + std::to_string(n_src) + " row_bytes=" + std::to_string(row_bytes));
  for (idx i = 0; i < n_rows; ++i) {
    if (rows[i] < 0 || rows[i] >= n_src)
      throw std::invalid_argument("take_rows: rows[" + std::to_string(i) + "] = " + std::to_string(rows[i]) +
                                  " is outside [0, " + std::to_string(n_src) + ")");
  }
  if (n_rows == 0 || row_bytes == 0) return;
  char* dst = static_cast<char*>(out);
  const char* base = static_cast<const char*>(src);
  const idx rows_per_block = std::max<idx>(1, kBlockBytes / row_bytes);
  parallel_for_blocks(n_rows, rows_per_block, [=](idx r0, idx r1) {
    for (idx r = r0; r < std::min(r1, r0 + kPrefetchRows); ++r) prefetch_row(base + rows[r] * row_bytes, row_bytes);
    for (idx r = r0; r < r1; ++r) {
      if (r + kPrefetchRows < r1) prefetch_row(base + rows[r + kPrefetchRows] * row_bytes, row_bytes);
      std::memcpy(dst + r * row_bytes, base + rows[r] * row_bytes, row_bytes);
    }
  });
}

}  // namespace cnnlite
