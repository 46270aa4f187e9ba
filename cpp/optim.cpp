#include "optim.h"

#include <cmath>
#include <stdexcept>

#include "parallel.h"

namespace cnnlite {

// Scalars are rounded to float32 once, as Keras casts them to the variable's dtype; (1 - beta) is formed in double
// first, as in Keras where the Python float is subtracted before the cast.

void adam_update(float* w, float* m, float* v, const float* g, idx n, double lr_t, double beta1, double beta2,
                 double eps) {
  if (n < 0) throw std::invalid_argument("adam_update: n must be non-negative");
  const float alpha = static_cast<float>(lr_t);
  const float one_minus_b1 = static_cast<float>(1.0 - beta1), one_minus_b2 = static_cast<float>(1.0 - beta2);
  const float epsilon = static_cast<float>(eps);
  parallel_for_elements(n, [=](idx begin, idx end) {
    float* __restrict wp = w;
    float* __restrict mp = m;
    float* __restrict vp = v;
    const float* __restrict gp = g;
    for (idx i = begin; i < end; ++i) {
      const float gi = gp[i];
      const float mi = mp[i] + (gi - mp[i]) * one_minus_b1;
      const float vi = vp[i] + (gi * gi - vp[i]) * one_minus_b2;
      mp[i] = mi;
      vp[i] = vi;
      wp[i] -= (mi * alpha) / (std::sqrt(vi) + epsilon);
    }
  });
}

void sgd_update(float* w, float* velocity, const float* g, idx n, double lr, double momentum, bool nesterov) {
  if (n < 0) throw std::invalid_argument("sgd_update: n must be non-negative");
  if (momentum != 0.0 && velocity == nullptr) {
    throw std::invalid_argument("sgd_update: velocity is required when momentum != 0");
  }
  const float rate = static_cast<float>(lr), mom = static_cast<float>(momentum);
  if (momentum == 0.0) {
    parallel_for_elements(n, [=](idx begin, idx end) {
      float* __restrict wp = w;
      const float* __restrict gp = g;
      for (idx i = begin; i < end; ++i) wp[i] -= gp[i] * rate;
    });
    return;
  }
  parallel_for_elements(n, [=](idx begin, idx end) {
    float* __restrict wp = w;
    float* __restrict vp = velocity;
    const float* __restrict gp = g;
    for (idx i = begin; i < end; ++i) {
      const float vi = vp[i] * mom - gp[i] * rate;
      vp[i] = vi;
      wp[i] += nesterov ? vi * mom - gp[i] * rate : vi;
    }
  });
}

namespace {

// One RMSprop variant; the flags are template parameters so each inner loop stays branch-free and vectorises.
template <bool kMomentum, bool kCentered>
void rmsprop_loop(float* w, float* acc, float* mom, float* mean_grad, const float* g, idx n, float rate, float rho,
                  float one_minus_rho, float momentum, float epsilon) {
  parallel_for_elements(n, [=](idx begin, idx end) {
    float* __restrict wp = w;
    float* __restrict ap = acc;
    float* __restrict mp = mom;
    float* __restrict gm = mean_grad;
    const float* __restrict gp = g;
    for (idx i = begin; i < end; ++i) {
      const float gi = gp[i];
      const float ai = rho * ap[i] + one_minus_rho * (gi * gi);
      ap[i] = ai;
      float denominator = ai + epsilon;
      if (kCentered) {
        const float mi = rho * gm[i] + one_minus_rho * gi;
        gm[i] = mi;
        denominator = (ai - mi * mi) + epsilon;
      }
      const float increment = (rate * gi) / std::sqrt(denominator);
      if (kMomentum) {
        const float vi = momentum * mp[i] + increment;
        mp[i] = vi;
        wp[i] -= vi;
      } else {
        wp[i] -= increment;
      }
    }
  });
}

}  // namespace

void rmsprop_update(float* w, float* acc, float* mom, float* mean_grad, const float* g, idx n, double lr, double rho,
                    double momentum, double eps) {
  if (n < 0) throw std::invalid_argument("rmsprop_update: n must be non-negative");
  if (momentum != 0.0 && mom == nullptr) {
    throw std::invalid_argument("rmsprop_update: a momentum buffer is required when momentum != 0");
  }
  const float rate = static_cast<float>(lr), r = static_cast<float>(rho), m = static_cast<float>(momentum);
  const float one_minus_rho = static_cast<float>(1.0 - rho), epsilon = static_cast<float>(eps);
  const bool use_momentum = momentum != 0.0, centered = mean_grad != nullptr;
  if (use_momentum && centered) {
    rmsprop_loop<true, true>(w, acc, mom, mean_grad, g, n, rate, r, one_minus_rho, m, epsilon);
  } else if (use_momentum) {
    rmsprop_loop<true, false>(w, acc, mom, mean_grad, g, n, rate, r, one_minus_rho, m, epsilon);
  } else if (centered) {
    rmsprop_loop<false, true>(w, acc, mom, mean_grad, g, n, rate, r, one_minus_rho, m, epsilon);
  } else {
    rmsprop_loop<false, false>(w, acc, mom, mean_grad, g, n, rate, r, one_minus_rho, m, epsilon);
  }
}

}  // namespace cnnlite
