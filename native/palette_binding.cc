// The N-API face of the palette kernels: checks every argument, since a size that does not match is an
// out-of-bounds write (lib/passes/codecs/palette-code.ts is the caller).
#include "palette_binding.h"

#include <algorithm>
#include <string>

#include "binding_args.h"
#include "palette.h"

namespace redpp {
namespace {

uint64_t MaxOf(const Napi::Uint32Array& a) {
  uint32_t m = 0;
  for (size_t i = 0; i < a.ElementLength(); i++) m = std::max(m, a[i]);
  return m;
}

// CodeNeurons for one width of the index (uint8_t or uint16_t); null when a neuron has more values than it addresses.
template <typename Word, typename Index>
Napi::Value Code(Napi::Env env, const Word* words, int width, const PaletteLayout& layout, Index* index, uint32_t* counts, int threads) {
  // The firsts are as many as the distinct values, known only at the end: a typed array of one per
  // element to hold them cost more in fresh memory (410 MB for VGG-16's fc1) than the coding itself.
  std::vector<uint32_t> firsts;
  const PaletteOutputs<Index> out{index, counts, &firsts};
  if (!CodeNeuronsOnThreads(PaletteSource<Word>{words, width}, layout, out, threads)) return env.Null();
  auto result = Napi::Uint32Array::New(env, firsts.size());
  std::copy(firsts.begin(), firsts.end(), result.Data());
  return result;
}

// Typed arrays' own Data(): it is the element pointer for shared memory too (an ArrayBuffer's is not).
template <typename Index>
Napi::Value CodeWith(Napi::Env env, const Napi::Value& words, int width, const PaletteLayout& layout, Index* index, uint32_t* counts, int threads) {
  if (IsTypedArrayOf(words, napi_uint32_array)) return Code(env, words.As<Napi::Uint32Array>().Data(), width, layout, index, counts, threads);
  return Code(env, words.As<Napi::Uint16Array>().Data(), width, layout, index, counts, threads);
}

}  // namespace

Napi::Value CodeNeuronsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const bool wide = info.Length() > 0 && IsTypedArrayOf(info[0], napi_uint32_array);
  const bool narrow_index = info.Length() > 4 && IsTypedArrayOf(info[4], napi_uint8_array);
  const bool ok = (info.Length() == 6 || (info.Length() == 7 && info[6].IsNumber())) && (wide || IsTypedArrayOf(info[0], napi_uint16_array)) &&
                  info[1].IsNumber() && IsTypedArrayOf(info[2], napi_uint32_array) && IsTypedArrayOf(info[3], napi_uint32_array) &&
                  (narrow_index || IsTypedArrayOf(info[4], napi_uint16_array)) && IsTypedArrayOf(info[5], napi_uint32_array);
  if (!ok) return Fail(env, "codeNeurons: bad arguments (call it through lib/passes/codecs/palette-code.ts)");
  const double threads = info.Length() == 7 ? info[6].As<Napi::Number>().DoubleValue() : 1;
  if (!IsWholeIn(threads, 1, 1024)) return Fail(env, "codeNeurons: threads must be an integer in [1, 1024]");
  const auto words = info[0].As<Napi::TypedArray>();
  const double width = info[1].As<Napi::Number>().DoubleValue();
  const auto neuron_at = info[2].As<Napi::Uint32Array>();
  const auto place_at = info[3].As<Napi::Uint32Array>();
  const auto index = info[4].As<Napi::TypedArray>();
  auto counts = info[5].As<Napi::Uint32Array>();
  if (!(width == 1 || (width == 2 && wide))) return Fail(env, "codeNeurons: width must be 1, or 2 words of 32 bits");
  const size_t w = static_cast<size_t>(width);
  if (words.ElementLength() % w != 0) return Fail(env, "codeNeurons: the words are not whole elements");
  const size_t elements = words.ElementLength() / w;
  if (index.ElementLength() != elements) return Fail(env, "codeNeurons: the index must have one entry per element");
  if (counts.ElementLength() != neuron_at.ElementLength()) return Fail(env, "codeNeurons: counts must have one entry per neuron");
  const PaletteLayout layout{neuron_at.Data(), neuron_at.ElementLength(), place_at.Data(), place_at.ElementLength()};
  if (layout.neurons > 0 && layout.fan_in > 0 && MaxOf(neuron_at) + MaxOf(place_at) >= elements) {
    return Fail(env, "codeNeurons: an element offset is out of range");
  }
  const int t = static_cast<int>(threads);
  if (narrow_index) return CodeWith(env, info[0], static_cast<int>(w), layout, info[4].As<Napi::Uint8Array>().Data(), counts.Data(), t);
  return CodeWith(env, info[0], static_cast<int>(w), layout, info[4].As<Napi::Uint16Array>().Data(), counts.Data(), t);
}

Napi::Value PackIndicesJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const bool narrow = info.Length() > 0 && IsTypedArrayOf(info[0], napi_uint8_array);
  const bool ok = info.Length() == 3 && (narrow || IsTypedArrayOf(info[0], napi_uint16_array)) && info[1].IsNumber() &&
                  IsTypedArrayOf(info[2], napi_uint8_array);
  if (!ok) return Fail(env, "packIndices: bad arguments (call it through lib/passes/codecs/words.ts)");
  const auto index = info[0].As<Napi::TypedArray>();
  const double bits = info[1].As<Napi::Number>().DoubleValue();
  auto out = info[2].As<Napi::Uint8Array>();
  const size_t index_bytes = narrow ? 1 : 2;
  if (!IsWholeIn(bits, 1, 8.0 * index_bytes)) {
    return Fail(env, narrow ? "packIndices: bits must be an integer in [1, 8] for 8-bit indices" : "packIndices: bits must be an integer in [1, 16]");
  }
  const size_t count = index.ElementLength();
  // count * bits cannot overflow: a typed array has fewer than 2^53 elements.
  if (out.ElementLength() < (count * static_cast<size_t>(bits) + 7) / 8) return Fail(env, "packIndices: the output is too small");
  // In place (palette.h), or apart: an output that overlaps the index anywhere else would be overwritten before it is read.
  const auto* in_begin = narrow ? info[0].As<Napi::Uint8Array>().Data() : reinterpret_cast<const uint8_t*>(info[0].As<Napi::Uint16Array>().Data());
  const auto* in_end = in_begin + index_bytes * count;
  const uint8_t* out_begin = out.Data();
  const bool apart = out_begin + out.ElementLength() <= in_begin || in_end <= out_begin;
  if (!apart && out_begin != in_begin) return Fail(env, "packIndices: the output overlaps the index other than in place");
  if (narrow) {
    PackIndices(info[0].As<Napi::Uint8Array>().Data(), count, static_cast<int>(bits), out.Data(), out.ElementLength());
  } else {
    PackIndices(info[0].As<Napi::Uint16Array>().Data(), count, static_cast<int>(bits), out.Data(), out.ElementLength());
  }
  return env.Undefined();
}

}  // namespace redpp
