// Losses with their gradients. Every loss is the batch mean of per-sample losses, summed in double in a fixed order
// (fixed row blocks added in block order), so the value does not depend on the thread count.
#pragma once
#include <cstdint>

#include "common.h"

namespace cnnlite {

// Probabilities are clipped to [kProbEpsilon, 1 - kProbEpsilon] before the log, as Keras (backend.epsilon()).
constexpr float kProbEpsilon = 1e-7f;

// probs, dlogits, logits, targets: (n, k). Fused softmax + categorical cross-entropy. Overwrites probs (the
// softmax) and dlogits = (probs - targets) / n; returns mean_i -sum_j targets * log(clip(probs)). n, k >= 1.
double softmax_xent(float* probs, float* dlogits, const float* logits, const float* targets, idx n, idx k);

// probs, dlogits, logits: (n, k); labels: (n,), each in [0, k) (else std::invalid_argument naming the value).
double sparse_softmax_xent(float* probs, float* dlogits, const float* logits, const int32_t* labels, idx n, idx k);
double sparse_softmax_xent(float* probs, float* dlogits, const float* logits, const int64_t* labels, idx n, idx k);

// probs, targets: (n, k). Keras's categorical cross-entropy on probabilities: each row is divided by its sum, then
// clipped; returns the batch mean.
double xent_forward(const float* probs, const float* targets, idx n, idx k);
// dprobs, probs, targets: (n, k). Gradient of xent_forward (overwritten); zero through clipped entries.
void xent_backward(float* dprobs, const float* probs, const float* targets, idx n, idx k);

// pred, targets: (n, k). Mean over the last axis, then over the n rows (Keras's MSE with k = last axis).
double mse_forward(const float* pred, const float* targets, idx n, idx k);
// dpred, pred, targets: (n, k). dpred = 2 (pred - targets) / (n k) (overwritten).
void mse_backward(float* dpred, const float* pred, const float* targets, idx n, idx k);

}  // namespace cnnlite
