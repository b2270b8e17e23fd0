#pragma once

#include <napi.h>

namespace redpp {

// codeNeurons(words, width, neuronAt, placeAt, index, counts) -> Uint32Array (the firsts) | null:
// palette.h's CodeNeurons, synchronously (it runs in the pool's worker threads). lib/binding.ts types it.
Napi::Value CodeNeuronsJs(const Napi::CallbackInfo& info);

// packIndices(index, bits, out) -> undefined: palette.h's PackIndices (`out` apart from the index, or over it in place).
Napi::Value PackIndicesJs(const Napi::CallbackInfo& info);

}  // namespace redpp
