// burn-edge ARM lane stand-in for LiteRT's CpuBackendContext: LCE's BGEMM needs only ruy_context().
// The real class (LiteRT tflite/kernels/cpu_backend_context.h) also owns gemmlowp/pthreadpool contexts and
// a TfLiteContext hook, none of which the binary convolution uses. One thread, like --num_threads=1.
#pragma once
#include <memory>

#include "ruy/context.h"

namespace tflite {
class CpuBackendContext {
 public:
  CpuBackendContext() : ruy_context_(new ruy::Context) { ruy_context_->set_max_num_threads(1); }
  ruy::Context* ruy_context() const { return ruy_context_.get(); }
  bool use_caching() const { return true; }
  int max_num_threads() const { return 1; }

 private:
  std::unique_ptr<ruy::Context> ruy_context_;
};
}  // namespace tflite
