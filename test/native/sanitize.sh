#!/usr/bin/env bash
# Builds the native kernels with ASan + UBSan (LeakSanitizer included) and runs test/native/hash_sanitize.cc and kernels_sanitize.cc.
set -euo pipefail
cd "$(dirname "$0")/../.."
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
n=native
g++ -std=c++17 -O1 -g -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=undefined,float-cast-overflow -fno-omit-frame-pointer \
  -ffp-contract=off -Wall -Wextra -I"$n" test/native/hash_sanitize.cc "$n/hash.cc" "$n/grid.cc" "$n/simd.cc" \
  "$n/simd_scalar.cc" "$n/simd_avx2.cc" "$n/simd_avx512.cc" "$n/thread_pool.cc" -o "$out/hash_sanitize" -pthread
ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 "$out/hash_sanitize"
g++ -std=c++17 -O1 -g -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=undefined,float-cast-overflow -fno-omit-frame-pointer \
  -ffp-contract=off -Wall -Wextra -I"$n" test/native/kernels_sanitize.cc "$n/palette.cc" "$n/weight_stats.cc" "$n/scale.cc" "$n/half.cc" "$n/pages.cc" "$n/channels.cc" \
  "$n/grid.cc" "$n/thread_pool.cc" "$n/quantize.cc" "$n/simd.cc" "$n/simd_scalar.cc" "$n/simd_avx2.cc" "$n/simd_avx512.cc" \
  -o "$out/kernels_sanitize" -pthread
ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 "$out/kernels_sanitize"
