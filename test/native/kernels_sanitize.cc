// The palette (on one thread and on several, rows and columns, past 65535 neurons), weight-stats, float16, row-scaling, page, channel (prints, kernel sharing) and uniform-quantizer kernels
// under AddressSanitizer, UndefinedBehaviorSanitizer and LeakSanitizer, without Node: neurons of 1 to
// 70001 weights, 16-, 32- and 64-bit elements, a neuron past 65536 values, every index width at counts
// that end mid-byte, in place and apart; sums and zero counts at lengths around the 8 lanes; pages
// released from views that start and end mid-page; uniform rows on every instruction set. Built and
// run by test/native/sanitize.sh (CI).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "../../native/half.h"
#include "../../native/pages.h"
#include "../../native/palette.h"
#include "../../native/quantize.h"
#include "../../native/scale.h"
#include "../../native/channels.h"
#include "../../native/simd.h"
#include "../../native/weight_stats.h"

int main() {
  std::mt19937 rng(2);
  int fails = 0;
  for (size_t fan_in : {1, 2, 7, 576, 70001}) {
    for (int width : {1, 2}) {
      for (uint32_t values : {1u, 3u, 300u, 100000u}) {
        const size_t neurons = 3, n = neurons * fan_in;
        std::vector<uint32_t> words(n * width);
        for (auto& w : words) w = rng() % values;
        std::vector<uint32_t> neuron_at(neurons), place_at(fan_in);
        for (size_t k = 0; k < neurons; k++) neuron_at[k] = static_cast<uint32_t>(k * fan_in);
        for (size_t c = 0; c < fan_in; c++) place_at[c] = static_cast<uint32_t>(c);
        std::vector<uint16_t> index(n);
        std::vector<uint32_t> counts(neurons), firsts;
        const redpp::PaletteOutputs<uint16_t> out{index.data(), counts.data(), &firsts};
        const redpp::PaletteLayout layout{neuron_at.data(), neurons, place_at.data(), fan_in};
        const bool coded = redpp::CodeNeurons(redpp::PaletteSource<uint32_t>{words.data(), width}, layout, out);
        // Only a neuron of more than 65536 distinct values is refused.
        const bool refusable = fan_in > 65536 && values > 65536;
        if (!coded && !refusable) fails++;
        // On 2 and 3 threads (thread_pool.cc), a part of the neurons each: the same outputs.
        for (int threads : {2, 3}) {
          std::vector<uint16_t> index_t(n);
          std::vector<uint32_t> counts_t(neurons), firsts_t;
          const redpp::PaletteOutputs<uint16_t> out_t{index_t.data(), counts_t.data(), &firsts_t};
          const bool coded_t = redpp::CodeNeuronsOnThreads(redpp::PaletteSource<uint32_t>{words.data(), width}, layout, out_t, threads);
          if (coded_t != coded || (coded && (index_t != index || counts_t != counts || firsts_t != firsts))) fails++;
        }
        std::vector<uint16_t> half(n);
        for (size_t i = 0; i < n; i++) half[i] = static_cast<uint16_t>(words[i]);
        // 16-bit elements have at most 65536 patterns: never refused.
        if (!redpp::CodeNeurons(redpp::PaletteSource<uint16_t>{half.data(), 1}, layout, out)) fails++;
        // One-byte indices: refused past 256 values, and only then.
        std::vector<uint8_t> narrow(n);
        const redpp::PaletteOutputs<uint8_t> out8{narrow.data(), counts.data(), &firsts};
        const bool coded8 = redpp::CodeNeurons(redpp::PaletteSource<uint32_t>{words.data(), width}, layout, out8);
        if (!coded8 && values <= 256 && width == 1) fails++;
      }
    }
  }
  // Columns (a place's elements a neuron apart: no rows shortcut), and more neurons than a table has
  // stamps (cleared once on the way), for 16- and 32-bit elements, against codes found by a plain search.
  for (size_t neurons : {5, 70000}) {
    const size_t fan_in = neurons > 1000 ? 2 : 9, n = neurons * fan_in;
    std::vector<uint32_t> words(n);
    for (auto& w : words) w = rng() % 7;
    std::vector<uint16_t> half(words.begin(), words.end());
    std::vector<uint32_t> neuron_at(neurons), place_at(fan_in);
    for (size_t k = 0; k < neurons; k++) neuron_at[k] = static_cast<uint32_t>(k);
    for (size_t c = 0; c < fan_in; c++) place_at[c] = static_cast<uint32_t>(c * neurons);
    const redpp::PaletteLayout layout{neuron_at.data(), neurons, place_at.data(), fan_in};
    std::vector<uint8_t> want(n);
    std::vector<uint32_t> want_counts(neurons);
    for (size_t k = 0; k < neurons; k++) {
      std::vector<uint32_t> seen;
      for (size_t c = 0; c < fan_in; c++) {
        const size_t e = k + c * neurons;
        const size_t code = std::find(seen.begin(), seen.end(), words[e]) - seen.begin();
        if (code == seen.size()) seen.push_back(words[e]);
        want[e] = static_cast<uint8_t>(code);
      }
      want_counts[k] = static_cast<uint32_t>(seen.size());
    }
    for (int bits : {16, 32}) {
      std::vector<uint8_t> index(n);
      std::vector<uint32_t> counts(neurons), firsts;
      const redpp::PaletteOutputs<uint8_t> out{index.data(), counts.data(), &firsts};
      const bool coded = bits == 16 ? redpp::CodeNeurons(redpp::PaletteSource<uint16_t>{half.data(), 1}, layout, out)
                                    : redpp::CodeNeurons(redpp::PaletteSource<uint32_t>{words.data(), 1}, layout, out);
      if (!coded || index != want || counts != want_counts) fails++;
    }
  }
  for (int bits = 1; bits <= 16; bits++) {
    for (size_t count : {0, 1, 3, 9, 1001}) {
      std::vector<uint16_t> index(count);
      for (auto& i : index) i = static_cast<uint16_t>(rng());  // wider than `bits`: masked
      std::vector<uint8_t> out((count * bits + 7) / 8);
      redpp::PackIndices(index.data(), count, bits, out.data(), out.size());
      // In place, over the index's own bytes.
      if (out.size() <= 2 * count) redpp::PackIndices(index.data(), count, bits, reinterpret_cast<uint8_t*>(index.data()), out.size());
      if (bits <= 8) {
        std::vector<uint8_t> narrow(index.begin(), index.end());
        redpp::PackIndices(narrow.data(), count, bits, narrow.data(), out.size());
      }
    }
  }
  for (size_t n : {0, 1, 7, 8, 9, 1000}) {
    std::vector<float> x(n);
    for (size_t i = 0; i < n; i++) x[i] = i % 3 ? static_cast<float>(i) : 0.0f;
    double expect = 0;
    for (size_t i = 0; i < n; i++) expect += static_cast<double>(x[i]) * x[i];
    if (std::abs(redpp::SumOfSquares(x.data(), n) - expect) > 1e-9 * (1 + expect)) fails++;
    for (size_t group : {1, 2, 4}) {
      if (n % group != 0) continue;
      std::vector<uint32_t> zeros(n / group);
      redpp::ZerosPerGroup(x.data(), n, group, zeros.data());
    }
  }
  // Every float16 pattern there and back (the vector and the scalar paths, NaN blocks included), at
  // lengths that end mid-vector.
  for (size_t n : {0, 7, 65536, 65539}) {
    std::vector<uint16_t> h(n), back(n);
    for (size_t i = 0; i < n; i++) h[i] = static_cast<uint16_t>(i);
    std::vector<float> f(n);
    redpp::HalfToFloat(h.data(), n, f.data());
    redpp::FloatToHalf(f.data(), n, back.data());
    for (size_t i = 0; i < n; i++) {
      const bool nan = (h[i] & 0x7fff) > 0x7c00;
      if (!nan && back[i] != h[i]) fails++;
    }
  }
  // Rows scaled in exactly their bytes (no row, one weight, rows that end mid-vector), products past
  // float's range and under it: infinities and zeros, as IEEE 754 rounds them.
  for (auto [rows, fan_in] : {std::pair<size_t, size_t>{0, 3}, {1, 1}, {3, 7}, {5, 17}, {2, 1001}}) {
    std::vector<float> w(rows * fan_in, 3e38f);
    std::vector<double> factors(rows);
    for (size_t r = 0; r < rows; r++) factors[r] = r % 2 ? 1e-90 : 10.0;
    redpp::ScaleRows(w.data(), rows, fan_in, factors.data());
    for (size_t i = 0; i < w.size(); i++) {
      if (w[i] != ((i / fan_in) % 2 ? 0.0f : INFINITY)) fails++;
    }
  }
  // The layouts whose neurons threads may share: rows and columns, not one where two neurons meet at an
  // element (partly or wholly), nor one neuron twice.
  {
    auto apart = [](std::vector<uint32_t> neuron_at, std::vector<uint32_t> place_at) {
      return redpp::NeuronsApart(redpp::PaletteLayout{neuron_at.data(), neuron_at.size(), place_at.data(), place_at.size()});
    };
    std::vector<uint32_t> row{0, 1, 2, 3}, col{0, 4, 8, 12};
    if (!apart(col, row) || !apart(row, col)) fails++;          // rows of 4; columns of a 4x4
    std::vector<uint32_t> wide(32);
    for (size_t i = 0; i < 32; i++) wide[i] = static_cast<uint32_t>(i);
    if (apart({0, 16}, wide) || apart({0, 0}, row) || apart({5, 5, 9}, {0})) fails++;  // overlapping; a neuron twice
    if (!apart({7}, wide) || !apart({0, 32}, wide)) fails++;  // one neuron; rows that just touch
    // A ConvTranspose [in 3, out 4, 1, 1] by output channel: neurons 0..3, places 0, 4, 8; apart as columns.
    if (!apart({0, 1, 2, 3}, {0, 4, 8})) fails++;
    // Neither rows nor columns though disjoint (neurons 0 and 2, places 0, 1, 4, 5): coded on one thread.
    if (apart({0, 2}, {0, 1, 4, 5})) fails++;
  }
  // Released stretches read as zeros, and the bytes around them keep their values.
  for (size_t from : {0, 1, 4095, 4096, 5000}) {
    for (size_t length : {0, 3, 4096, 8191, 3 * 4096 + 17, 64 * 4096}) {
      std::vector<uint8_t> bytes(from + length + 8192, 7);
      redpp::ReleasePages(bytes.data() + from, length);
      for (size_t i = 0; i < bytes.size(); i++) {
        if (bytes[i] != (i >= from && i < from + length ? 0 : 7)) {
          fails++;
          break;
        }
      }
    }
  }
  // The uniform quantizer on every instruction set: the same outputs from each, rows of 1 to 1001
  // weights, 1 to 16 bits, both table precisions, scales past float16's range, and a non-finite row.
  for (size_t row_length : {1, 3, 8, 9, 1001}) {
    for (int bits : {1, 4, 16}) {
      for (bool half : {false, true}) {
        for (float spread : {0.05f, 1e-41f, 1e37f}) {
          const size_t count = 3, n = count * row_length;
          std::normal_distribution<float> nd(0.f, spread);
          std::vector<float> rows(n);
          for (auto& v : rows) v = nd(rng);
          const double clips[] = {1, 0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5, 0.4};
          std::vector<float> first_values, first_tables;
          std::vector<uint16_t> first_q;
          for (int simd = 1; simd <= 3; simd++) {
            if (!redpp::SimdSupported(static_cast<redpp::SimdLevel>(simd))) continue;
            std::vector<float> scale(count), zp(count), values(n);
            std::vector<uint16_t> q(n);
            if (!redpp::UniformRows(rows.data(), count, row_length, bits, half, clips, 9, simd, {scale.data(), zp.data(), q.data(), values.data()})) fails++;
            std::vector<float> tables(scale);
            tables.insert(tables.end(), zp.begin(), zp.end());
            if (first_values.empty()) {
              first_values = values;
              first_tables = tables;
              first_q = q;
            } else if (std::memcmp(first_values.data(), values.data(), n * sizeof(float)) != 0 || first_q != q ||
                       std::memcmp(first_tables.data(), tables.data(), tables.size() * sizeof(float)) != 0) {
              fails++;
            }
          }
        }
      }
    }
  }
  {
    std::vector<float> rows{1, 2, NAN, 4}, scale(1), zp(1), values(4);
    std::vector<uint16_t> q(4);
    const double clip = 1;
    if (redpp::UniformRows(rows.data(), 1, 4, 8, false, &clip, 1, 0, {scale.data(), zp.data(), q.data(), values.data()})) fails++;
  }
  // Nearest centers: one to 257 of them, weights past both ends.
  for (size_t k : {1, 2, 3, 257}) {
    std::vector<double> centers(k);
    for (size_t j = 0; j < k; j++) centers[j] = static_cast<double>(j) - static_cast<double>(k) / 2;
    std::vector<float> x{-1e9f, 0.f, 0.5f, 1e9f, NAN}, out(x.size());
    redpp::NearestCenters(x.data(), x.size(), centers.data(), k, out.data());
    if (out[0] != centers[0] || out[3] != centers[k - 1] || out[4] != centers[0]) fails++;
  }
  // Huge pages asked for views that start and end mid-page: only whole stretches inside, bytes unchanged.
  for (size_t from : {0, 1, 4096}) {
    for (size_t length : {0, 5, 2 << 20, (5 << 20) + 3}) {
      std::vector<uint8_t> bytes(from + length + (2 << 20), 9);
      const size_t advised = redpp::AdviseHugePages(bytes.data() + from, length);
      // The aligned interior exactly (or nothing, where the kernel has no huge pages).
      const uintptr_t begin = reinterpret_cast<uintptr_t>(bytes.data() + from), h = redpp::kHugePage;
      const uintptr_t first = (begin + h - 1) / h * h, end = (begin + length) / h * h;
      if (advised != 0 && advised != (end > first ? end - first : 0)) fails++;
      for (uint8_t b : bytes) {
        if (b != 9) {
          fails++;
          break;
        }
      }
    }
  }
  // Moves over a buffer's whole length, overlapping both ways and empty: as memmove one at a time into a copy.
  for (size_t size : {1, 9, 4097}) {
    std::vector<uint8_t> bytes(size), expected;
    for (auto& b : bytes) b = static_cast<uint8_t>(rng());
    std::vector<redpp::ByteMove> moves;
    for (int k = 0; k < 12; k++) {
      const size_t length = rng() % (size + 1);
      moves.push_back({rng() % (size - length + 1), rng() % (size - length + 1), length});
    }
    moves.push_back({0, 0, size});
    expected = bytes;
    for (const auto& m : moves) {
      std::vector<uint8_t> stretch(expected.begin() + m.from, expected.begin() + m.from + m.length);
      std::copy(stretch.begin(), stretch.end(), expected.begin() + m.to);
    }
    redpp::MoveBytes(bytes.data(), moves.data(), moves.size());
    if (bytes != expected) fails++;
  }
  // Channel prints on views of every shape, fewer channels than side by side and a rest: the same
  // prints as one channel at a time (the rest's loop).
  for (size_t length : {1, 7, 8, 19}) {
    for (size_t inner : {1, 3}) {
      const size_t outer = 3, stride = 5;
      std::vector<uint32_t> words(outer * length * stride);
      for (auto& w : words) w = rng() % 5 == 0 ? 0x80000000u : rng() % 4;
      std::vector<uint32_t> prints(length / inner);
      redpp::ChannelPrints(words.data(), {outer, length, stride, inner}, prints.data());
      for (size_t c = 0; c < prints.size(); c++) {
        std::vector<uint32_t> one;  // channel c alone, as a view of one channel
        for (size_t o = 0; o < outer; o++) {
          const uint32_t* p = words.data() + (o * length + c * inner) * stride;
          one.insert(one.end(), p, p + inner * stride);
        }
        uint32_t print = 0;
        redpp::ChannelPrints(one.data(), {1, 1, one.size(), 1}, &print);
        if (print != prints[c]) fails++;
      }
    }
  }
  // No words, or no channels: prints of the basis, and no table.
  {
    uint32_t prints[2] = {1, 1};
    redpp::ChannelPrints(nullptr, {0, 2, 3, 1}, prints);
    redpp::ChannelPrints(nullptr, {size_t{1} << 62, 2, 0, 1}, prints);
    if (prints[0] != 0x811c9dc5u || prints[1] != 0x811c9dc5u) fails++;
    uint32_t counts[1] = {7};
    redpp::KernelSharing(nullptr, {size_t{1} << 40, 0, 3}, nullptr, counts, nullptr);
    redpp::KernelSharing(nullptr, {0, 1, 3}, nullptr, counts, nullptr);
    if (counts[0] != 0) fails++;
  }
  // Kernel sharing: kernels of 1 to 25 taps from a few, zeros of both signs, all-zero kernels; the
  // largest kernel at the end of the weights, with and without the starts.
  for (size_t k : {1, 9, 25}) {
    for (size_t cout : {1, 7, 64}) {
      const size_t cin = 5;
      std::vector<uint32_t> bits(cout * cin * k);
      for (auto& w : bits) w = rng() % 4 == 0 ? (rng() % 2 ? 0x80000000u : 0u) : rng() % 3 + 1;
      std::vector<int32_t> index(cout * cin);
      std::vector<uint32_t> counts(cin), starts(cout * cin);
      redpp::KernelSharing(bits.data(), {cout, cin, k}, index.data(), counts.data(), starts.data());
      redpp::KernelSharing(bits.data(), {cout, cin, k}, index.data(), counts.data(), nullptr);
      for (size_t c = 0; c < cin; c++) {
        if (counts[c] > cout) fails++;
      }
      for (int32_t i : index) {
        if (i < -1 || i >= static_cast<int32_t>(cout)) fails++;
      }
    }
  }
  std::printf("palette, weight stats, half, scale, pages, moves, channels, uniform and nearest fails=%d\n", fails);
  return fails != 0;
}
