#pragma once

#include <napi.h>

namespace redpp {

// releasePages(bytes: Uint8Array) -> number: pages.h's ReleasePages over the array's bytes.
Napi::Value ReleasePagesJs(const Napi::CallbackInfo& info);

// adviseHugePages(bytes: Uint8Array) -> number: pages.h's AdviseHugePages over the array's bytes.
Napi::Value AdviseHugePagesJs(const Napi::CallbackInfo& info);

}  // namespace redpp
