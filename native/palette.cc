#include "palette.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <type_traits>
#include <vector>

#include "thread_pool.h"

namespace redpp {
namespace {

// One element's bits as a key: a 64-bit element is its two 32-bit words.
template <typename Word>
inline uint64_t KeyAt(const PaletteSource<Word>& src, size_t element) {
  if (src.width == 1) return src.words[element];
  const size_t at = element * 2;
  return static_cast<uint64_t>(src.words[at]) | (static_cast<uint64_t>(src.words[at + 1]) << 32);
}

// An open-addressing table of one neuron's values, stamped with the neuron it belongs to, so that a
// new neuron starts with an empty table without clearing it. It starts small and doubles as a neuron
// needs: a neuron has a few hundred values where it has 25088 weights, and a table sized for the
// weights (2^16 slots) missed the cache on every probe (VGG-16's fc1 coded at 10 ns a weight).
class Palette {
 public:
  // Slots per value at most: a lookup then almost always ends at its first slot, and the branch that
  // says so is predicted (at half full, chains of varying length cost more in mispredictions than a
  // table 8 times larger costs in cache).
  static constexpr size_t kSparse = 8;

  Palette() { Resize(256); }

  void Reset() {
    keys_.clear();
    if (++stamp_ == 0) {  // after 2^32 neurons: clear once, and begin again
      for (Slot& s : slots_) s.stamp = 0;
      stamp_ = 1;
    }
  }

  uint32_t count() const { return static_cast<uint32_t>(keys_.size()); }

  // The code of `key`: an earlier equal value's, or the next one.
  uint32_t Add(uint64_t key) {
    for (size_t slot = SlotOf(key);; slot = (slot + 1) & mask_) {
      Slot& s = slots_[slot];
      if (s.stamp != stamp_) {
        const uint32_t code = count();
        s = Slot{key, stamp_, code};
        keys_.push_back(key);
        if (kSparse * keys_.size() > slots_.size()) Grow();
        return code;
      }
      if (s.key == key) return s.code;
    }
  }

 private:
  struct Slot {
    uint64_t key;
    uint32_t stamp;
    uint32_t code;
  };

  // The top bits of a multiplicative hash: values differ mostly in their low bits.
  size_t SlotOf(uint64_t key) const { return static_cast<size_t>((key * 0x9e3779b97f4a7c15ull) >> shift_); }

  void Resize(size_t slots) {
    slots_.assign(slots, Slot{0, 0, 0});
    mask_ = slots - 1;
    shift_ = 64;
    for (size_t s = slots; s > 1; s >>= 1) shift_--;
  }

  // Twice the slots, the current neuron's values placed again (the stamps start afresh).
  void Grow() {
    Resize(2 * slots_.size());
    stamp_ = 1;
    for (uint32_t code = 0; code < keys_.size(); code++) {
      size_t slot = SlotOf(keys_[code]);
      while (slots_[slot].stamp == stamp_) slot = (slot + 1) & mask_;
      slots_[slot] = Slot{keys_[code], stamp_, code};
    }
  }

  std::vector<Slot> slots_;
  std::vector<uint64_t> keys_;  // the current neuron's values, by code
  uint32_t stamp_ = 1;
  size_t mask_ = 0;
  int shift_ = 64;
};

// Rows (each neuron's weights side by side, the usual layout): the kernels below then take a weight's
// element as its neuron's first plus its place, without loading the place (a tenth less time a weight).
bool IsRows(const PaletteLayout& layout) {
  for (size_t c = 0; c < layout.fan_in; c++) {
    if (layout.place_at[c] != c) return false;
  }
  return true;
}

// 16-bit elements (float16, bfloat16) index a table of every value directly: an entry holds the
// neuron's stamp in its high half and the value's code in its low half, so a new neuron starts with an
// empty table without clearing it. 256 KiB a thread, kept, whatever the index width and layout: no
// hash, no probe (ISNet's float16 convs coded at 1.5 ns a weight, against 4.4 through Palette).
struct Table16 {
  std::vector<uint32_t> entries;
  uint32_t stamp = 0;
};

Table16& ThreadTable16() {
  static thread_local Table16 table;
  if (table.entries.empty()) table.entries.assign(size_t{1} << 16, 0);
  return table;
}

template <bool kRows, typename Index>
bool CodeNeurons16(const uint16_t* words, const PaletteLayout& layout, const PaletteOutputs<Index>& out) {
  Table16& table = ThreadTable16();
  // Locals, not the thread_local and the structs: a store through Index (uint8_t may alias anything)
  // made the compiler fetch the table's address (a __tls_get_addr call) and the layout again per weight.
  uint32_t* const entries = table.entries.data();
  uint32_t neuron_stamp = table.stamp;
  const uint32_t* const place_at = layout.place_at;
  const size_t fan_in = layout.fan_in;
  Index* const index = out.index;
  std::vector<uint32_t>& firsts = *out.firsts;
  firsts.clear();
  for (size_t n = 0; n < layout.neurons; n++) {
    if (++neuron_stamp == (uint32_t{1} << 16)) {  // after 65535 neurons: clear once, and begin again
      std::fill(entries, entries + (size_t{1} << 16), 0u);
      neuron_stamp = 1;
    }
    const uint32_t tag = neuron_stamp << 16;
    uint32_t count = 0;
    const size_t base = layout.neuron_at[n];
    for (size_t c = 0; c < fan_in; c++) {
      const size_t e = base + (kRows ? c : place_at[c]);
      uint32_t& entry = entries[words[e]];
      uint32_t code;
      if ((entry & 0xffff0000u) == tag) {
        code = entry & 0xffffu;
      } else {
        code = count++;
        if (code == kMaxCodes<Index>) {
          table.stamp = neuron_stamp;
          return false;
        }
        entry = tag | code;
        firsts.push_back(static_cast<uint32_t>(e));
      }
      index[e] = static_cast<Index>(code);
    }
    out.counts[n] = count;
  }
  table.stamp = neuron_stamp;
  return true;
}

// 32-bit elements (float32): CodeNeurons16's scheme behind a hash. A slot holds a value and a tag (the
// neuron's stamp in the high half, the value's code in the low half), 8 bytes where Palette's take 16;
// the table grows as a neuron needs and is kept from neuron to neuron. 16 slots per value (Palette's
// bytes per value): fewer lookups go past their first slot, each a mispredicted branch. Everything the
// loop reads is a local: a store through Index (uint8_t may alias anything) made the compiler load
// Palette's members again per weight. ResNet-50's hashed layers, one thread: 3.4 ns a weight through
// Palette, 2.4 here at 8 slots per value, 2.2 at 16, 1.95 with the rows' shortcut.
template <bool kRows, typename Index>
bool CodeNeurons32(const uint32_t* words, const PaletteLayout& layout, const PaletteOutputs<Index>& out) {
  struct Slot {
    uint32_t key;
    uint32_t tag;
  };
  constexpr uint32_t kStampOne = uint32_t{1} << 16;
  constexpr size_t kSparse32 = 16;
  std::vector<Slot> table(256, Slot{0, 0});
  Slot* slots = table.data();
  size_t mask = table.size() - 1;
  int shift = 32 - 8;
  uint32_t stamp = 0;
  const uint32_t* const place_at = layout.place_at;
  const size_t fan_in = layout.fan_in;
  Index* const index = out.index;
  std::vector<uint32_t>& firsts = *out.firsts;
  firsts.clear();
  for (size_t n = 0; n < layout.neurons; n++) {
    if (++stamp == kStampOne) {  // after 65535 neurons: clear once, and begin again
      for (Slot& s : table) s.tag = 0;
      stamp = 1;
    }
    const uint32_t tag = stamp << 16;
    const size_t neuron_firsts = firsts.size();
    uint32_t count = 0;
    const size_t base = layout.neuron_at[n];
    for (size_t c = 0; c < fan_in; c++) {
      const size_t e = base + (kRows ? c : place_at[c]);
      const uint32_t key = words[e];
      size_t at = (key * 0x9e3779b1u) >> shift;
      uint32_t code;
      for (;;) {
        const Slot s = slots[at];
        if ((s.tag & 0xffff0000u) != tag) {
          code = count++;
          if (code == kMaxCodes<Index>) return false;
          slots[at] = Slot{key, tag | code};
          firsts.push_back(static_cast<uint32_t>(e));
          if (kSparse32 * count > table.size()) {
            // Twice the slots, this neuron's values placed again (their firsts say where they are).
            table.assign(2 * table.size(), Slot{0, 0});
            slots = table.data();
            mask = table.size() - 1;
            shift--;
            for (uint32_t k = 0; k < count; k++) {
              const uint32_t v = words[firsts[neuron_firsts + k]];
              size_t p = (v * 0x9e3779b1u) >> shift;
              while ((slots[p].tag & 0xffff0000u) == tag) p = (p + 1) & mask;
              slots[p] = Slot{v, tag | k};
            }
          }
          break;
        }
        if (s.key == key) {
          code = s.tag & 0xffffu;
          break;
        }
        at = (at + 1) & mask;
      }
      index[e] = static_cast<Index>(code);
    }
    out.counts[n] = count;
  }
  return true;
}

}  // namespace

template <typename Word, typename Index>
bool CodeNeurons(const PaletteSource<Word>& src, const PaletteLayout& layout, const PaletteOutputs<Index>& out) {
  if constexpr (std::is_same_v<Word, uint16_t>) {
    return IsRows(layout) ? CodeNeurons16<true>(src.words, layout, out) : CodeNeurons16<false>(src.words, layout, out);
  }
  if constexpr (std::is_same_v<Word, uint32_t>) {
    if (src.width == 1) return IsRows(layout) ? CodeNeurons32<true>(src.words, layout, out) : CodeNeurons32<false>(src.words, layout, out);
  }
  Palette palette;
  // Locals, as in CodeNeurons16: the index's stores would otherwise reload them per weight.
  const PaletteSource<Word> source = src;
  const uint32_t* const place_at = layout.place_at;
  const size_t fan_in = layout.fan_in;
  Index* const index = out.index;
  std::vector<uint32_t>& firsts = *out.firsts;
  firsts.clear();
  for (size_t n = 0; n < layout.neurons; n++) {
    palette.Reset();
    const size_t base = layout.neuron_at[n];
    for (size_t c = 0; c < fan_in; c++) {
      const size_t e = base + place_at[c];
      const uint32_t known = palette.count();
      const uint32_t code = palette.Add(KeyAt(source, e));
      if (code == kMaxCodes<Index>) return false;
      if (palette.count() > known) firsts.push_back(static_cast<uint32_t>(e));
      index[e] = static_cast<Index>(code);
    }
    out.counts[n] = palette.count();
  }
  return true;
}

bool NeuronsApart(const PaletteLayout& layout) {
  struct Spread {
    uint64_t span = 0;
    uint64_t min_gap = UINT64_MAX;  // between distinct neighbours once sorted; 0 where two are equal
  };
  auto spread = [](const uint32_t* a, size_t n) {
    std::vector<uint32_t> v(a, a + n);
    std::sort(v.begin(), v.end());
    Spread s;
    if (!v.empty()) s.span = v.back() - v.front();
    for (size_t i = 1; i < v.size(); i++) s.min_gap = std::min<uint64_t>(s.min_gap, v[i] - v[i - 1]);
    return s;
  };
  const Spread n = spread(layout.neuron_at, layout.neurons);
  const Spread p = spread(layout.place_at, layout.fan_in);
  if (n.min_gap == 0) return false;
  return p.span < n.min_gap || (p.min_gap > 0 && n.span < p.min_gap);
}

template <typename Word, typename Index>
bool CodeNeuronsOnThreads(const PaletteSource<Word>& src, const PaletteLayout& layout, const PaletteOutputs<Index>& out, int threads) {
  // A few parts per thread, taken as each thread is free: neurons vary in their number of values.
  // Threads write the index entries of their own neurons only where no element is two neurons'.
  const size_t parts = std::min(layout.neurons, static_cast<size_t>(std::max(threads, 1)) * 4);
  if (threads <= 1 || parts <= 1 || !NeuronsApart(layout)) return CodeNeurons(src, layout, out);
  std::vector<std::vector<uint32_t>> firsts(parts);
  std::atomic<size_t> next{0};
  std::atomic<bool> fits{true};
  auto work = [&]() {
    for (size_t p = next.fetch_add(1); p < parts && fits.load(); p = next.fetch_add(1)) {
      const size_t from = layout.neurons * p / parts;
      const size_t to = layout.neurons * (p + 1) / parts;
      const PaletteLayout part{layout.neuron_at + from, to - from, layout.place_at, layout.fan_in};
      if (!CodeNeurons(src, part, PaletteOutputs<Index>{out.index, out.counts + from, &firsts[p]})) fits.store(false);
    }
  };
  RunOnThreads(threads, work);
  if (!fits.load()) return false;
  out.firsts->clear();
  for (const auto& f : firsts) out.firsts->insert(out.firsts->end(), f.begin(), f.end());
  return true;
}

template bool CodeNeurons(const PaletteSource<uint16_t>&, const PaletteLayout&, const PaletteOutputs<uint8_t>&);
template bool CodeNeurons(const PaletteSource<uint16_t>&, const PaletteLayout&, const PaletteOutputs<uint16_t>&);
template bool CodeNeurons(const PaletteSource<uint32_t>&, const PaletteLayout&, const PaletteOutputs<uint8_t>&);
template bool CodeNeurons(const PaletteSource<uint32_t>&, const PaletteLayout&, const PaletteOutputs<uint16_t>&);
template bool CodeNeuronsOnThreads(const PaletteSource<uint16_t>&, const PaletteLayout&, const PaletteOutputs<uint8_t>&, int);
template bool CodeNeuronsOnThreads(const PaletteSource<uint16_t>&, const PaletteLayout&, const PaletteOutputs<uint16_t>&, int);
template bool CodeNeuronsOnThreads(const PaletteSource<uint32_t>&, const PaletteLayout&, const PaletteOutputs<uint8_t>&, int);
template bool CodeNeuronsOnThreads(const PaletteSource<uint32_t>&, const PaletteLayout&, const PaletteOutputs<uint16_t>&, int);

// In place, byte k is written once the indices up to bit 8k + 7 are read: after index p, the bytes
// written end before bit (p + 1) * bits <= 8 * sizeof(Index) * (p + 1), where index p + 1 begins.
template <typename Index>
void PackIndices(const Index* index, size_t count, int bits, uint8_t* out, size_t out_bytes) {
  size_t at = 0;
  if (bits == 8) {
    for (; at < count; at++) out[at] = static_cast<uint8_t>(index[at]);
  } else if (bits == 16) {
    for (size_t p = 0; p < count; p++) {
      const uint16_t v = index[p];
      out[at++] = static_cast<uint8_t>(v);
      out[at++] = static_cast<uint8_t>(v >> 8);
    }
  } else {
    // At most 7 bits are held between fields, so a field and what is held fit 64 bits.
    const uint64_t mask = (uint64_t{1} << bits) - 1;
    uint64_t acc = 0;
    int held = 0;
    for (size_t p = 0; p < count; p++) {
      acc |= (index[p] & mask) << held;
      held += bits;
      while (held >= 8) {
        out[at++] = static_cast<uint8_t>(acc);
        acc >>= 8;
        held -= 8;
      }
    }
    if (held > 0) out[at++] = static_cast<uint8_t>(acc);
  }
  if (out_bytes > at) std::memset(out + at, 0, out_bytes - at);
}

template void PackIndices(const uint8_t*, size_t, int, uint8_t*, size_t);
template void PackIndices(const uint16_t*, size_t, int, uint8_t*, size_t);

}  // namespace redpp
