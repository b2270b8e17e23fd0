#pragma once

#include <napi.h>

namespace redpp {

// releasePages(views: Uint8Array[]) -> Promise<number>: pages.h's ReleasePages over each array's bytes,
// on a libuv thread; the bytes given back in all. Nothing may read or write the bytes until it settles.
Napi::Value ReleasePagesJs(const Napi::CallbackInfo& info);

// adviseHugePages(bytes: Uint8Array) -> number: pages.h's AdviseHugePages over the array's bytes.
Napi::Value AdviseHugePagesJs(const Napi::CallbackInfo& info);

// moveBytes(bytes: Uint8Array, moves: Float64Array) -> Promise<number>: pages.h's MoveBytes over the
// array's bytes on a libuv thread, `moves` as (from, to, length) triples; the bytes moved in all.
// Nothing may read or write the bytes until it settles.
Napi::Value MoveBytesJs(const Napi::CallbackInfo& info);

}  // namespace redpp
