// 2-D max and average pooling on NHWC float32 tensors with explicit padding (top, bottom, left, right).
// Output size: oh = (h + pad_top + pad_bottom - ph) / sh + 1, likewise ow. Every pad must be smaller than its pool
// size (true for TensorFlow 'same' padding), so each window holds at least one real cell; padded cells are ignored.
#pragma once
#include <cstdint>

#include "common.h"

namespace cnnlite {

struct Pool2dGeometry {
  idx n, h, w, c;      // input (n, h, w, c)
  idx ph, pw, sh, sw;  // pool size and strides
  idx pad_top, pad_bottom, pad_left, pad_right;
  idx oh() const { return (h + pad_top + pad_bottom - ph) / sh + 1; }
  idx ow() const { return (w + pad_left + pad_right - pw) / sw + 1; }
};

// Throws std::invalid_argument unless the geometry is usable (positive sizes, pads < pool, oh, ow >= 1).
void check_pool2d_geometry(const Pool2dGeometry& g);

// y, argmax: (n, oh, ow, c); x: (n, h, w, c). argmax = flat r*w + col index of the maximum inside its image/channel
// plane; ties go to the first cell in row-major window order (as TensorFlow).
void maxpool2d_forward(float* y, int32_t* argmax, const float* x, const Pool2dGeometry& g);

// dx: (n, h, w, c) (overwritten); dy, argmax: (n, oh, ow, c). Throws std::invalid_argument for an argmax outside
// [0, h*w). Windows that overlap (stride < pool) accumulate; deterministic (one thread owns one image of dx).
// relu_y (n, oh, ow, c), optional: this pooling's output, its input having been a ReLU's output. dy then reaches
// only cells where relu_y > 0, which folds that ReLU's backward into this pass (the argmax cell holds relu_y):
// dx = relu_backward(maxpool2d_backward(dy), pooling input), bitwise.
void maxpool2d_backward(float* dx, const float* dy, const int32_t* argmax, idx n, idx h, idx w, idx oh, idx ow, idx c,
                        const float* relu_y = nullptr);

// The same given the forward's geometry g (input (g.n, g.h, g.w, g.c); dy, argmax (n, oh, ow, c)), bitwise equal.
// When windows do not overlap (strides >= pool sizes) each cell of dx is written once, straight from the window that
// holds it (no zero fill followed by a scatter), and an argmax outside its own window throws std::invalid_argument.
// Overlapping windows take the path above.
void maxpool2d_backward(float* dx, const float* dy, const int32_t* argmax, const Pool2dGeometry& g,
                        const float* relu_y = nullptr);

// y: (n, oh, ow, c); x: (n, h, w, c). Mean over the window's real (non-padded) cells, as Keras.
void avgpool2d_forward(float* y, const float* x, const Pool2dGeometry& g);

// dx: (n, h, w, c) (overwritten); dy: (n, oh, ow, c).
void avgpool2d_backward(float* dx, const float* dy, const Pool2dGeometry& g);

}  // namespace cnnlite
