// The N-API face of pages.h: releasePages runs on a libuv thread, over many arrays a call (each call
// costs its caller a libuv thread's wake-up), adviseHugePages synchronously (it only marks the range:
// microseconds), moveBytes on a libuv thread, every move of a buffer in one call.
#include "pages_binding.h"

#include <memory>
#include <utility>
#include <vector>

#include "binding_args.h"
#include "pages.h"
#include "promise_worker.h"

namespace redpp {
namespace {

class ReleaseWorker : public PromiseWorker {
 public:
  explicit ReleaseWorker(Napi::Env env) : PromiseWorker(env, "redpp:releasePages") {}

  void Add(Napi::Uint8Array bytes) {
    ranges_.push_back({bytes.Data(), bytes.ByteLength()});
    KeepAlive(bytes);  // while another thread drops its pages
  }

 protected:
  void Execute() override {
    size_t released = 0;
    for (const Range& r : ranges_) released += r.length == 0 ? 0 : ReleasePages(r.data, r.length);
    result_ = static_cast<double>(released);
  }

 private:
  struct Range {
    uint8_t* data;
    size_t length;
  };
  std::vector<Range> ranges_;
};

class MoveWorker : public PromiseWorker {
 public:
  MoveWorker(Napi::Env env, Napi::Uint8Array bytes, std::vector<ByteMove> moves)
      : PromiseWorker(env, "redpp:moveBytes"), data_(bytes.Data()), moves_(std::move(moves)) {
    KeepAlive(bytes);  // while another thread moves its bytes
  }

 protected:
  void Execute() override {
    MoveBytes(data_, moves_.data(), moves_.size());
    double moved = 0;
    for (const ByteMove& m : moves_) moved += static_cast<double>(m.length);
    result_ = moved;
  }

 private:
  uint8_t* data_;
  std::vector<ByteMove> moves_;
};

}  // namespace

Napi::Value ReleasePagesJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsArray()) return Fail(env, "releasePages: bad arguments");
  // Each element read once and checked, before the worker exists: a getter cannot hand it another value
  // after the check, and a throw leaves nothing half made.
  auto views = info[0].As<Napi::Array>();
  std::vector<Napi::Uint8Array> arrays;
  for (uint32_t i = 0; i < views.Length(); i++) {
    Napi::Value v = views.Get(i);
    if (!IsTypedArrayOf(v, napi_uint8_array)) return Fail(env, "releasePages: bad arguments");
    arrays.push_back(v.As<Napi::Uint8Array>());
  }
  // Owned here until queued (the queue then destroys it when done): a throw in between frees it.
  auto worker = std::make_unique<ReleaseWorker>(env);
  for (const auto& a : arrays) worker->Add(a);
  Napi::Value promise = worker->Promise();
  worker->Queue();
  worker.release();
  return promise;
}

Napi::Value AdviseHugePagesJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !IsTypedArrayOf(info[0], napi_uint8_array)) return Fail(env, "adviseHugePages: bad arguments");
  auto bytes = info[0].As<Napi::Uint8Array>();
  return Napi::Number::New(env, static_cast<double>(AdviseHugePages(bytes.Data(), bytes.ByteLength())));
}

Napi::Value MoveBytesJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2 || !IsTypedArrayOf(info[0], napi_uint8_array) || !IsTypedArrayOf(info[1], napi_float64_array)) {
    return Fail(env, "moveBytes: bad arguments");
  }
  auto bytes = info[0].As<Napi::Uint8Array>();
  auto triples = info[1].As<Napi::Float64Array>();
  if (triples.ElementLength() % 3 != 0) return Fail(env, "moveBytes: moves must be (from, to, length) triples");
  // Every stretch checked inside the buffer here, before any thread touches it.
  const double size = static_cast<double>(bytes.ByteLength());
  std::vector<ByteMove> moves;
  moves.reserve(triples.ElementLength() / 3);
  for (size_t i = 0; i < triples.ElementLength(); i += 3) {
    const double from = triples[i], to = triples[i + 1], length = triples[i + 2];
    if (!IsWholeIn(from, 0, size) || !IsWholeIn(to, 0, size) || !IsWholeIn(length, 0, size) || from + length > size || to + length > size) {
      return Fail(env, "moveBytes: a move outside the buffer");
    }
    moves.push_back({static_cast<size_t>(from), static_cast<size_t>(to), static_cast<size_t>(length)});
  }
  auto worker = std::make_unique<MoveWorker>(env, bytes, std::move(moves));
  Napi::Value promise = worker->Promise();
  worker->Queue();
  worker.release();
  return promise;
}

}  // namespace redpp
