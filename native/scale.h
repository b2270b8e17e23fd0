// The fold's rescaling of a layer's weights (lib/layers/grid.ts: scaleRowsReference is the reference,
// matched bit for bit): each row times its factor in double, rounded once to float, as JavaScript stores
// `w[i] *= f` into a Float32Array. At memory speed, where the JavaScript loop took 1.1-1.8 ns a weight
// (ResNet-50's 53 folded BatchNorms: 30-40 ms of the main thread).
#pragma once

#include <cstddef>

namespace redpp {

// w holds `rows` rows of `fan_in` consecutive weights; row r is multiplied by factors[r]. IEEE
// arithmetic throughout: a product past float's range becomes an infinity, a NaN keeps its payload.
void ScaleRows(float* w, size_t rows, size_t fan_in, const double* factors);

}  // namespace redpp
