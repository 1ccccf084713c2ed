// burn-edge ARM lane stand-in for TFLite's optimized/im2col_utils.h (not among the provided sources).
//
// Same contract as TFLite's optimized_ops::Im2col / DilatedIm2col for LCE's use: row r of the result is
// output pixel r (batch, out_y, out_x in row-major order) and holds the receptive field in
// (filter_y, filter_x, channel) order, positions outside the input filled with `zero_byte` bytes.
// Written for this lane (straight loops, no TFLite code). Its instructions are charged to counting phase
// 2 (5 during the driver's uncounted first call), not to the kernel's phase, so the cost table keeps LCE's code and this stand-in apart.
#pragma once
#include <cstdint>
#include <cstring>

#include "tensorflow/lite/kernels/internal/types.h"

extern "C" long burn_edge_lane_phase(long phase);  // returns the previous phase

namespace tflite {
namespace optimized_ops {

template <typename T>
void DilatedIm2col(const ConvParams& params, uint8_t zero_byte, const RuntimeShape& input_shape,
                   const T* input_data, const RuntimeShape& filter_shape, const RuntimeShape& output_shape,
                   T* im2col_data) {
  const long previous_phase = burn_edge_lane_phase(2);  // 5 in the uncounted first call
  if (previous_phase != 1) burn_edge_lane_phase(5);
  const int batches = input_shape.Dims(0), in_h = input_shape.Dims(1), in_w = input_shape.Dims(2);
  const int depth = input_shape.Dims(3);
  const int f_h = filter_shape.Dims(1), f_w = filter_shape.Dims(2);
  const int out_h = output_shape.Dims(1), out_w = output_shape.Dims(2);
  const int dil_w = params.dilation_width_factor;
  const size_t row = static_cast<size_t>(depth) * sizeof(T);
  T* dst = im2col_data;
  for (int b = 0; b < batches; ++b)
    for (int oy = 0; oy < out_h; ++oy)
      for (int ox = 0; ox < out_w; ++ox)
        for (int fy = 0; fy < f_h; ++fy, dst += f_w * depth) {
          const int iy = oy * params.stride_height + fy * params.dilation_height_factor -
                         params.padding_values.height;
          const int ix0 = ox * params.stride_width - params.padding_values.width;
          if (iy < 0 || iy >= in_h) {
            std::memset(dst, zero_byte, f_w * row);
            continue;
          }
          const T* src_row = input_data + static_cast<size_t>(b * in_h + iy) * in_w * depth;
          // filter taps fx in [lo, hi) fall inside the input row
          int lo = 0, hi = f_w;
          while (lo < f_w && ix0 + lo * dil_w < 0) ++lo;
          while (hi > lo && ix0 + (hi - 1) * dil_w >= in_w) --hi;
          if (lo > 0) std::memset(dst, zero_byte, lo * row);
          if (dil_w == 1) {  // one contiguous span, as TFLite's ExtractPatchIntoBufferColumn copies it
            if (hi > lo) std::memcpy(dst + lo * depth, src_row + (ix0 + lo) * depth, (hi - lo) * row);
          } else {
            for (int fx = lo; fx < hi; ++fx)
              std::memcpy(dst + fx * depth, src_row + (ix0 + fx * dil_w) * depth, row);
          }
          if (hi < f_w) std::memset(dst + hi * depth, zero_byte, (f_w - hi) * row);
        }
  burn_edge_lane_phase(previous_phase);
}

template <typename T>
void Im2col(const ConvParams& params, int kheight, int kwidth, uint8_t zero_byte,
            const RuntimeShape& input_shape, const T* input_data, const RuntimeShape& output_shape,
            T* output_data) {
  const int filter_dims[4] = {1, kheight, kwidth, input_shape.Dims(3)};
  DilatedIm2col(params, zero_byte, input_shape, input_data, RuntimeShape(4, filter_dims), output_shape,
                output_data);
}

}  // namespace optimized_ops
}  // namespace tflite
