#include "channels.h"

#include <vector>

namespace redpp {
namespace {

// FNV-1a's 32-bit basis and prime.
constexpr uint32_t kFnvBasis = 0x811c9dc5u;
constexpr uint32_t kFnvPrime = 0x01000193u;

// A word with float32 -0 read as 0: the weights it multiplies are the same.
inline uint32_t Word(uint32_t w) { return w == 0x80000000u ? 0u : w; }

// FNV-1a over a kernel's words, then the top bits of a multiplicative hash (as the reference hashes;
// any hash would do, the numbers going by first appearance).
inline uint32_t HashOf(const uint32_t* w, size_t k, int slot_bits) {
  uint32_t h = kFnvBasis;
  for (size_t i = 0; i < k; i++) h = (h ^ Word(w[i])) * kFnvPrime;
  return (h * 0x9e3779b1u) >> (32 - slot_bits);
}

inline bool Equal(const uint32_t* a, const uint32_t* b, size_t k) {
  for (size_t i = 0; i < k; i++) {
    if (Word(a[i]) != Word(b[i])) return false;
  }
  return true;
}

inline bool NonZero(const uint32_t* w, size_t k) {
  for (size_t i = 0; i < k; i++) {
    if ((w[i] & 0x7fffffffu) != 0) return true;
  }
  return false;
}

}  // namespace

void ChannelPrints(const uint32_t* words, const ChannelView& view, uint32_t* prints) {
  const size_t channels = view.length / view.inner, run = view.inner * view.stride;
  if (run == 0 || view.outer == 0) {
    // No words: every channel's hash is the basis (and no loop of `outer` empty steps).
    for (size_t c = 0; c < channels; c++) prints[c] = kFnvBasis;
    return;
  }
  // Each hash is one chain of multiplies: eight channels' chains side by side keep the multiplier busy
  // (a chain alone waits on each product), each one still over its own words in order.
  constexpr size_t kSide = 8;
  size_t c = 0;
  for (; c + kSide <= channels; c += kSide) {
    uint32_t h[kSide];
    for (uint32_t& v : h) v = kFnvBasis;
    for (size_t o = 0; o < view.outer; o++) {
      const uint32_t* p[kSide];
      for (size_t j = 0; j < kSide; j++) p[j] = words + (o * view.length + (c + j) * view.inner) * view.stride;
      for (size_t k = 0; k < run; k++) {
        for (size_t j = 0; j < kSide; j++) h[j] = (h[j] ^ Word(p[j][k])) * kFnvPrime;
      }
    }
    for (size_t j = 0; j < kSide; j++) prints[c + j] = h[j];
  }
  for (; c < channels; c++) {
    uint32_t h = kFnvBasis;
    for (size_t o = 0; o < view.outer; o++) {
      const uint32_t* p = words + (o * view.length + c * view.inner) * view.stride;
      for (size_t k = 0; k < run; k++) h = (h ^ Word(p[k])) * kFnvPrime;
    }
    prints[c] = h;
  }
}

void KernelSharing(const uint32_t* bits, const KernelSharingShape& shape, int32_t* index, uint32_t* counts, uint32_t* starts) {
  const size_t cout = shape.cout, cin = shape.cin, k = shape.k;
  if (cout == 0 || cin == 0) {
    for (size_t c = 0; c < cin; c++) counts[c] = 0;
    return;
  }
  // At least twice as many slots as a channel has kernels; each slot holds the first word of its kernel
  // and the channel it was filled for, so that a new channel starts with no clearing.
  int slot_bits = 1;
  while ((size_t{1} << slot_bits) < 2 * cout + 2) slot_bits++;
  const size_t mask = (size_t{1} << slot_bits) - 1;
  struct Slot {
    uint32_t start;
    uint32_t channel;  // c + 1; 0 is empty
    int32_t number;
  };
  std::vector<Slot> slots(mask + 1, Slot{0, 0, 0});
  for (size_t c = 0; c < cin; c++) {
    const uint32_t stamp = static_cast<uint32_t>(c + 1);
    int32_t used = 0;
    for (size_t o = 0; o < cout; o++) {
      const size_t at = (o * cin + c) * k;
      const uint32_t* w = bits + at;
      if (!NonZero(w, k)) {
        index[o * cin + c] = -1;
        continue;
      }
      size_t slot = HashOf(w, k, slot_bits);
      for (;; slot = (slot + 1) & mask) {
        Slot& s = slots[slot];
        if (s.channel != stamp) {
          s = Slot{static_cast<uint32_t>(at), stamp, used};
          if (starts != nullptr) starts[c * cout + static_cast<size_t>(used)] = static_cast<uint32_t>(at);
          index[o * cin + c] = used++;
          break;
        }
        if (Equal(bits + s.start, w, k)) {
          index[o * cin + c] = s.number;
          break;
        }
      }
    }
    counts[c] = static_cast<uint32_t>(used);
  }
}

}  // namespace redpp
