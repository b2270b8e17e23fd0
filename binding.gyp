{
  "targets": [
    {
      "target_name": "redpp",
      "sources": [
        "native/addon.cc",
        "native/half.cc",
        "native/half_binding.cc",
        "native/hash.cc",
        "native/hash_binding.cc",
        "native/palette.cc",
        "native/palette_binding.cc",
        "native/quantize.cc",
        "native/quantize_binding.cc",
        "native/pages.cc",
        "native/pages_binding.cc",
        "native/channels.cc",
        "native/channels_binding.cc",
        "native/scale.cc",
        "native/scale_binding.cc",
        "native/weight_stats.cc",
        "native/weight_stats_binding.cc",
        "native/simd.cc",
        "native/simd_scalar.cc",
        "native/simd_avx2.cc",
        "native/simd_avx512.cc",
        "native/cuda_off.cc",
        "native/grid.cc",
        "native/thread_pool.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "NAPI_CPP_EXCEPTIONS", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions", "-O2", "-O0"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++20", "-O2", "-O0"],
      "cflags": ["-O3", "-Wall", "-Wextra", "-ffp-contract=off", "-fno-fast-math"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-O3", "-Wall", "-Wextra", "-ffp-contract=off"],
      "ldflags": ["-pthread"],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "OTHER_CFLAGS": ["-O3", "-ffp-contract=off"]
      }
    }
  ]
}
