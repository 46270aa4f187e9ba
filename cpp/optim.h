// In-place optimizer steps on one flat weight array, following Keras 3's update_step formulas in float32.
#pragma once
#include "common.h"

namespace cnnlite {

// w, m, v, g: (n,). Keras Adam: m += (g - m)(1 - beta1); v += (g^2 - v)(1 - beta2); w -= m lr_t / (sqrt(v) + eps),
// with lr_t = lr sqrt(1 - beta2^t) / (1 - beta1^t) computed by the caller. Updates w, m, v.
void adam_update(float* w, float* m, float* v, const float* g, idx n, double lr_t, double beta1, double beta2,
                 double eps);

// w, velocity, g: (n,). Keras SGD: with momentum, velocity = momentum velocity - lr g and w += velocity (or, with
// nesterov, w += momentum velocity - lr g); without momentum w -= lr g and velocity may be null.
void sgd_update(float* w, float* velocity, const float* g, idx n, double lr, double momentum, bool nesterov);

// w, acc, mom, mean_grad, g: (n,). Keras RMSprop: acc = rho acc + (1 - rho) g^2; with centered (mean_grad not
// null) mean_grad = rho mean_grad + (1 - rho) g and denominator = acc - mean_grad^2 + eps, else acc + eps;
// increment = lr g / sqrt(denominator); with momentum != 0, mom = momentum mom + increment and w -= mom, else
// w -= increment. mom may be null when momentum == 0. Updates w, acc and the non-null buffers.
void rmsprop_update(float* w, float* acc, float* mom, float* mean_grad, const float* g, idx n, double lr, double rho,
                    double momentum, double eps);

}  // namespace cnnlite
