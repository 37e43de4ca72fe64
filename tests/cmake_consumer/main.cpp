// Trains a one-layer cnnx::Sequential on y = x0 + 2 x1 - x2 and predicts with it, through the
// installed headers and library only. Exit status 1 when the loss does not fall.
#include <cmath>
#include <cstdint>
#include <iostream>
#include <memory>
#include <vector>

#include "cnnx/cnnx.hpp"

int main() {
  cnnx::set_random_seed(1);  // the same weights, so the same output, on every run
  cnnx::Sequential model;
  cnnx::DenseConfig config;
  config.units = 1;
  model.add(cnnx::make_dense("dense", config));
  model.build({3});
  model.compile(cnnx::make_mean_squared_error(), std::make_shared<cnnx::SGD>(0.1));

  const std::int64_t n = 8;
  std::vector<float> x(n * 3), y(n);
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t j = 0; j < 3; ++j) x[i * 3 + j] = float((i * 3 + j) % 5) / 4.0f - 0.5f;
    y[i] = x[i * 3] + 2.0f * x[i * 3 + 1] - x[i * 3 + 2];
  }
  cnnx::Batch batch;
  batch.x = x.data();
  batch.y = y.data();
  batch.count = n;
  batch.target_dim = 1;
  batch.n = n;
  model.reserve(n);
  const double first = model.train_step(batch).loss;
  double last = first;
  for (int step = 0; step < 200; ++step) last = model.train_step(batch).loss;

  std::vector<float> out(n);
  model.predict(x.data(), n, out.data());
  std::cout << "cnnx " << CNNX_VERSION << ": loss " << first << " -> " << last << "\n";
  for (std::int64_t i = 0; i < n; ++i) std::cout << "  predict " << out[i] << " (target " << y[i] << ")\n";
  if (!(std::isfinite(last) && last < first / 10)) {
    std::cerr << "expected the loss to fall tenfold, received " << first << " -> " << last << "\n";
    return 1;
  }
  return 0;
}
