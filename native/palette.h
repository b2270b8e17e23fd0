// Palette coding for the packed export (lib/passes/codecs/palette-code.ts is the reference, which this
// must match exactly): each neuron's distinct values, told apart by their bits, numbered in order of
// first appearance along the neuron; and the indices as a bitstream of fixed-width fields.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace redpp {

// Most values per neuron that an index of 8 or 16 bits addresses.
template <typename Index>
constexpr uint32_t kMaxCodes = uint32_t{1} << (8 * sizeof(Index));

// The elements of the weights: `width` words of W bits each (W = 16 or 32).
template <typename Word>
struct PaletteSource {
  const Word* words;
  int width;  // 1, or 2 (a 64-bit element as two 32-bit words)
};

struct PaletteLayout {
  const uint32_t* neuron_at;  // per neuron, its first element
  size_t neurons;
  const uint32_t* place_at;  // per weight of a neuron, its offset from the neuron's first element
  size_t fan_in;
};

template <typename Index>  // uint8_t or uint16_t
struct PaletteOutputs {
  Index* index;                   // per element: its code among its neuron's values
  uint32_t* counts;               // per neuron: its distinct values
  std::vector<uint32_t>* firsts;  // per distinct value, neuron by neuron: the element where it first appears
};

// Codes every neuron; returns false when a neuron has more values than an Index addresses (the
// outputs are then incomplete). The caller has checked every offset in range.
template <typename Word, typename Index>
bool CodeNeurons(const PaletteSource<Word>& src, const PaletteLayout& layout, const PaletteOutputs<Index>& out);

// Whether no element is two neurons' (element = neuron_at[n] + place_at[c]), so that threads coding
// different neurons never write the same index entry: the neurons' offsets distinct, and either every
// neuron's elements within the gap to the next neuron (rows), or every place's elements within the gap
// to the next place (columns). A layout that is neither (a ConvTranspose's) is coded on one thread.
bool NeuronsApart(const PaletteLayout& layout);

// CodeNeurons on `threads` CPU threads (thread_pool.h), the neurons taken in contiguous parts, each
// part's firsts joined in order: the same outputs, for a layer coded alone (pack codes a layer of a
// gigabyte by itself, to keep the memory of the forms in flight small). On one thread where the
// layout is not NeuronsApart().
template <typename Word, typename Index>
bool CodeNeuronsOnThreads(const PaletteSource<Word>& src, const PaletteLayout& layout, const PaletteOutputs<Index>& out, int threads);

// Packs `count` indices of `bits` bits each (bits <= 8 * sizeof(Index); higher bits are dropped) into
// `out`, little-endian, index p at bit p * bits; `out` holds ceil(count * bits / 8) bytes or more (the
// rest is zeroed). `out` may be `index` itself: each byte is written after the indices it overwrites
// are read.
template <typename Index>
void PackIndices(const Index* index, size_t count, int bits, uint8_t* out, size_t out_bytes);

}  // namespace redpp
