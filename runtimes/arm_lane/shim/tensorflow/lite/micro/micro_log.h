// burn-edge ARM lane stand-in: tflite-micro's op_macros.h logs through MicroPrintf; print to stderr.
// TF_LITE_ASSERT_EQ is in TFLite's (non-micro) op_macros.h, which LCE's optimized_bgemm.h expects.
#pragma once
#include <cstdio>
#define MicroPrintf(...) std::fprintf(stderr, __VA_ARGS__)
#ifndef TF_LITE_ASSERT_EQ
#define TF_LITE_ASSERT_EQ(x, y)                             \
  do {                                                      \
    if ((x) != (y)) {                                       \
      std::fprintf(stderr, "%s != %s\n", #x, #y);           \
      std::abort();                                         \
    }                                                       \
  } while (0)
#endif
