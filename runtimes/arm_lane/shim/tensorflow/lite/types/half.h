// burn-edge ARM lane stand-in for tflite's half type (tensorflow/lite/types/half.h is not among the
// provided sources). The binary-convolution kernels never use it; types.h only needs the type to exist with
// these constexpr members. A bit container, not an arithmetic type.
#pragma once
#include <cstdint>

#ifndef TFLITE_ARCH_FLOAT16
#define TFLITE_ARCH_FLOAT16 0
#endif

namespace tflite {
class half {
 public:
  constexpr half() = default;
  static constexpr half from_bits(std::uint16_t b) { return half(b, 0); }
  static constexpr half smallest_normal() { return from_bits(0x0400); }
  static constexpr half max() { return from_bits(0x7bff); }
  static constexpr half min() { return from_bits(0xfbff); }
  static constexpr half epsilon() { return from_bits(0x1400); }
  explicit half(float) {}
  explicit operator float() const { return 0.f; }
  constexpr std::uint16_t bits() const { return bits_; }

 private:
  constexpr half(std::uint16_t b, int) : bits_(b) {}
  std::uint16_t bits_ = 0;
};
}  // namespace tflite
