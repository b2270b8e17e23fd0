#include "simd_scalar.h"

namespace redpp {
namespace {

void Stats(const float* x, size_t n, GroupStats* s) {
  scalar::InitStats(s);
  scalar::StatsFrom(x, 0, n, s);
}

void Bins(const float* x, size_t n, const BinMap& m, int32_t* bin) { scalar::BinsFrom(x, 0, n, m, bin); }

void Map(const float* x, size_t n, const BinMap& m, const float* bin_value, float* out, double* err) {
  scalar::MapFrom(x, 0, n, m, bin_value, out, err);
}

// `counts` points at the first real bin; the caller pads `radius` zeros on each side.
void Density(const double* counts, size_t bins, const double* kernel, int radius, double* density) {
  scalar::DensityFrom(counts, 0, bins, kernel, radius, density);
}

void Slopes(const double* density, size_t bins, uint64_t* up, uint64_t* down) {
  scalar::SlopesFrom(density, 0, bins, up, down);
}

const SimdKernels kScalar{kSimdScalar, Stats, Bins, Map, Density, Slopes};

}  // namespace

const SimdKernels& ScalarKernels() { return kScalar; }

}  // namespace redpp
