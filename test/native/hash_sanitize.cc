// The hashing kernel under AddressSanitizer, UndefinedBehaviorSanitizer and LeakSanitizer, without
// Node: awkward group sizes, both centers, betas from 0 to 5 and past the float range, every
// instruction set the CPU has, one and two threads, in place, huge values, a density past 32-bit
// integers, interval sums that round, and a NaN. Built and run by test/native/sanitize.sh (CI).
#include <cstdio>
#include <random>
#include <vector>
#include <cmath>
#include "../../native/hash.h"
#include "../../native/simd.h"
int main() {
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.f, 0.05f);
  size_t sizes[] = {1, 2, 3, 27, 64, 576, 4608, 17};
  int fails = 0;
  for (size_t g : sizes) for (int center = 0; center < 2; center++) for (double beta : {0.0, 1e-7, 0.05, 0.5, 5.0, 1e38, 1e308}) for (int simd = 1; simd <= 3; simd++) for (int threads : {1, 2}) {
    if (!redpp::SimdSupported((redpp::SimdLevel)simd)) continue;
    size_t n = g * 37;
    std::vector<float> w(n), out(n);
    for (auto& v : w) v = nd(rng);
    if (g == 64) for (size_t i = 0; i < n; i += 3) w[i] = 0.25f;  // duplicates
    if (g == 17) for (size_t i = 0; i < n; i++) w[i] *= 1e37f;
    if (g == 4608) for (size_t i = 0; i < n; i++) if (i % 3 != 0) w[i] = 0.125f;  // density past int32
    if (g == 3) for (size_t i = 0; i < n; i++) w[i] = i % 3 == 0 ? 1.f : i % 3 == 1 ? -1.f : 0x1p-70f;  // sums that round
    std::vector<uint32_t> d(n / g); std::vector<double> r(n / g);
    redpp::HashParams p; p.beta = beta; p.center = (redpp::Center)center; p.threads = threads;
    int64_t bad = redpp::HashWeights(w.data(), n, g, p, simd, {out.data(), d.data(), r.data()});
    if (bad != -1) fails++;
    // in place
    redpp::HashWeights(w.data(), n, g, p, simd, {w.data(), d.data(), r.data()});
  }
  std::vector<float> w(100, 1.f); w[50] = NAN; std::vector<float> o(100); std::vector<uint32_t> d(10); std::vector<double> r(10);
  redpp::HashParams p; p.threads = 2;
  int64_t bad = redpp::HashWeights(w.data(), 100, 10, p, 0, {o.data(), d.data(), r.data()});
  std::printf("fails=%d bad=%lld\n", fails, (long long)bad);
  return fails != 0 || bad != 50;
}
