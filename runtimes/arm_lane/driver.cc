// burn-edge ARM lane driver: run one LceBconv2d layer through Larq Compute Engine's own kernels.
//
// Built for aarch64 (LCE's NEON/assembly kernels) and run under qemu-aarch64 (runtimes/arm_lane/build.py).
// The same source also compiles for other CPUs, where LCE selects its portable kernels.
//
//   driver MODE LAYER_FILE OUT_FILE
//     MODE: bgemm | indirect       the layer's real output (float / int8 / bitpacked int32)
//           acc-bgemm | acc-indirect  the XOR-popcount accumulators (output transform = identity, float)
//           bitpack                the layer input bitpacked by LCE's LceQuantize routine (bitpack_matrix)
//   prints one line "kernel=<name>" to stdout.
//
// The LAYER_FILE (written by runtimes/arm.py) is little-endian: 24 int32 header words (see `Header`),
// then the bitpacked input [N,H,W,ceil(Cin/32)] int32, the packed filter [Cout,Fh,Fw,ceil(Cin/g/32)] int32,
// the multiplier [Cout] f32, the bias [Cout] f32, the thresholds [Cout] int32 and, when `has_float_input`,
// the float input the bitpacked input was made from [N,H,W,Cin] f32.
//
// Instructions are counted by the qemu plugin (count_plugin.c) between marker syscalls:
// phase 1 = the LCE kernel call, phase 2 = this lane's im2col stand-in, phase 3 = bitpacking,
// phase 4 = the default BGEMM's first call (includes ruy's one-time weight packing), phase 5 = its im2col.
// What happens outside the kernel call (the output-transform set-up mirrored from LCE's bconv2d.cc
// OneTimeSetup, the indirect kernel's weight packing and indirection buffer, file I/O) is not counted:
// in TFLite these run once per model, not per inference.
#include <cxxabi.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <typeinfo>
#include <vector>

namespace tflite {}
namespace compute_engine { namespace core { using namespace ::tflite; } }  // LCE gets this from other headers

#include "larq_compute_engine/core/bconv2d/optimized_bgemm.h"
#include "larq_compute_engine/core/bconv2d/optimized_indirect_bgemm.h"
#include "larq_compute_engine/core/bconv2d/zero_padding_correction.h"
#include "larq_compute_engine/core/bitpacking/bitpack.h"
#include "larq_compute_engine/core/indirect_bgemm/select_kernel.h"
#include "tensorflow/lite/kernels/padding.h"

static long g_phase = 0;
extern "C" long burn_edge_lane_phase(long phase) {  // switch the counting phase; returns the previous one
  const long previous = g_phase;
  g_phase = phase;
  syscall(4242, phase);
  return previous;
}

namespace {

using compute_engine::core::TBitpacked;
namespace bconv2d = compute_engine::core::bconv2d;
namespace bitpacking = compute_engine::core::bitpacking;
namespace ib = compute_engine::core::indirect_bgemm;

struct Header {
  int32_t magic, version, out_type;  // out_type: 0 float, 1 int8, 2 bitpacked int32
  int32_t batch, in_h, in_w, channels_in, channels_out, filter_h, filter_w, groups;
  int32_t stride_h, stride_w, dil_h, dil_w, padding, pad_value, activation;  // TfLitePadding, TfLiteFusedActivation
  int32_t out_h, out_w;
  float int8_scale;
  int32_t int8_zero_point, has_float_input, reserved;
};
static_assert(sizeof(Header) == 24 * 4, "header layout");
#ifdef __aarch64__
constexpr bool AARCH64 = true;
#else
constexpr bool AARCH64 = false;
#endif
constexpr int32_t kMagic = 0x4c43454c;  // "LECL"

int Fail(const std::string& msg) {
  std::fprintf(stderr, "error: %s\n", msg.c_str());
  return 2;
}

int32_t Packed(int32_t c) { return (c + 31) / 32; }

template <typename T>
bool ReadArray(std::FILE* f, std::vector<T>& v, size_t n) {
  v.resize(n + 16);  // LCE kernels may read up to LCE_EXTRA_BYTES past the end
  return std::fread(v.data(), sizeof(T), n, f) == n;
}

struct Layer {
  Header h;
  std::vector<TBitpacked> input, filter;
  std::vector<float> multiplier, bias, float_input;
  std::vector<int32_t> thresholds;
};

// The activation clamp of TFLite's CalculateActivationRange for int32.
void ActivationRange(int32_t act, int32_t* lo, int32_t* hi) {
  *lo = std::numeric_limits<int32_t>::lowest();
  *hi = std::numeric_limits<int32_t>::max();
  if (act == kTfLiteActRelu) *lo = 0;
  if (act == kTfLiteActReluN1To1) { *lo = -1; *hi = 1; }
  if (act == kTfLiteActRelu6) { *lo = 0; *hi = 6; }
}

// Float/int8 output-transform parameters, computed as LCE's bconv2d.cc OneTimeSetup does (in double).
struct Transform {
  int32_t clamp_min, clamp_max;
  std::vector<float> mul, bias;
};

Transform MakeTransform(const Layer& L, bool accumulators) {
  const Header& h = L.h;
  Transform t;
  t.mul.assign(h.channels_out + 16, 0.f);
  t.bias.assign(h.channels_out + 16, 0.f);
  if (accumulators) {  // float(accum << 1) * 0.5 + 0 == accum, exactly
    t.clamp_min = std::numeric_limits<int32_t>::lowest();
    t.clamp_max = std::numeric_limits<int32_t>::max();
    for (int i = 0; i < h.channels_out; ++i) t.mul[i] = 0.5f;
    return t;
  }
  const int32_t add = h.filter_h * h.filter_w * (h.channels_in / h.groups);
  const double scale = h.out_type == 1 ? h.int8_scale : 1.0;
  const double zp = h.out_type == 1 ? h.int8_zero_point : 0.0;
  for (int i = 0; i < h.channels_out; ++i) {
    const double m = L.multiplier[i], b = L.bias[i];
    t.mul[i] = -1 * m / scale;
    t.bias[i] = (b + static_cast<double>(add) * m) / scale + zp;
  }
  int32_t lo, hi;
  ActivationRange(h.activation, &lo, &hi);
  lo = std::max(lo, -1 * add);
  hi = std::min(hi, add);
  t.clamp_min = -1 * hi + add;
  t.clamp_max = -1 * lo + add;
  return t;
}

template <typename Dst>
void FillTransform(bconv2d::OutputTransform<Dst>& ot, const Transform& t, const Layer&) {
  ot.clamp_min = t.clamp_min;
  ot.clamp_max = t.clamp_max;
  ot.multiplier = t.mul.data();
  ot.bias = t.bias.data();
}
void FillTransform(bconv2d::OutputTransform<TBitpacked>& ot, const Transform&, const Layer& L) {
  ot.thresholds = L.thresholds.data();
}

tflite::RuntimeShape Shape4(int32_t a, int32_t b, int32_t c, int32_t d) {
  const int32_t dims[4] = {a, b, c, d};
  return tflite::RuntimeShape(4, dims);
}

void SetShape4(tflite::RuntimeShape& s, int32_t a, int32_t b, int32_t c, int32_t d) {
  const int32_t dims[4] = {a, b, c, d};
  s.ReplaceWith(4, dims);
}

tflite::PaddingType RuntimePadding(TfLitePadding p) {  // as LCE's tflite/kernels/utils.h RuntimePaddingType
  return p == kTfLitePaddingSame ? tflite::PaddingType::kSame
                                 : p == kTfLitePaddingValid ? tflite::PaddingType::kValid : tflite::PaddingType::kNone;
}

struct Geometry {
  bconv2d::BConv2DParams params;
  tflite::RuntimeShape input_shape, filter_shape, output_shape;
};

void MakeGeometry(const Header& h, Geometry& g) {
  auto& p = g.params;
  p.filter_height = h.filter_h;
  p.filter_width = h.filter_w;
  p.channels_in = h.channels_in;
  p.channels_out = h.channels_out;
  p.groups = h.groups;
  p.stride_height = h.stride_h;
  p.stride_width = h.stride_w;
  p.dilation_height_factor = h.dil_h;
  p.dilation_width_factor = h.dil_w;
  p.padding_type = static_cast<TfLitePadding>(h.padding);
  p.pad_value = h.pad_value;
  int out_h = 0, out_w = 0;
  p.padding_values = tflite::ComputePaddingHeightWidth(h.stride_h, h.stride_w, h.dil_h, h.dil_w, h.in_h, h.in_w,
                                                       h.filter_h, h.filter_w, p.padding_type, &out_h, &out_w);
  SetShape4(g.input_shape, h.batch, h.in_h, h.in_w, Packed(h.channels_in));
  SetShape4(g.filter_shape, h.channels_out, h.filter_h, h.filter_w, Packed(h.channels_in / h.groups));
  SetShape4(g.output_shape, h.batch, out_h, out_w, h.channels_out);
}

// The zero-padding correction table, as LCE's OneTimeSetup caches it (same-zero padding, float output).
std::vector<float> PaddingBuffer(const Layer& L, const Geometry& g, bool accumulators) {
  const Header& h = L.h;
  if (accumulators || h.padding != kTfLitePaddingSame || h.pad_value != 0) return {};
  namespace zpc = compute_engine::core::bconv2d::zero_padding_correction;
  std::vector<float> buf(zpc::GetCacheSize(h.filter_h, h.filter_w, h.channels_out, h.dil_h, h.dil_w));
  zpc::CacheCorrectionValues(L.filter.data(), h.filter_h, h.filter_w, h.channels_out, h.channels_in / h.groups,
                             h.dil_h, h.dil_w, L.multiplier.data(), buf.data());
  return buf;
}

template <typename Dst>
std::string RunBGemm(const Layer& L, bool accumulators, std::vector<Dst>& out) {
  const Header& h = L.h;
  if (h.groups != 1) return "unsupported: grouped conv (LCE's BGEMM path rejects it)";
  Geometry g;
  MakeGeometry(h, g);
  Transform t = MakeTransform(L, accumulators);
  bconv2d::OutputTransform<Dst> ot;
  FillTransform(ot, t, L);
  std::vector<float> padding_buffer = PaddingBuffer(L, g, accumulators);
  tflite::ConvParams cp{};
  cp.padding_type = RuntimePadding(g.params.padding_type);
  cp.padding_values.width = g.params.padding_values.width;
  cp.padding_values.height = g.params.padding_values.height;
  cp.stride_height = h.stride_h;
  cp.stride_width = h.stride_w;
  cp.dilation_height_factor = h.dil_h;
  cp.dilation_width_factor = h.dil_w;
  cp.quantized_activation_min = t.clamp_min;
  cp.quantized_activation_max = t.clamp_max;
  const bool need_im2col = h.stride_h != 1 || h.stride_w != 1 || h.dil_h != 1 || h.dil_w != 1 || h.filter_h != 1 ||
                           h.filter_w != 1;
  const int out_h = g.output_shape.Dims(1), out_w = g.output_shape.Dims(2);
  tflite::RuntimeShape im2col_shape = Shape4(h.batch, out_h, out_w, Packed(h.channels_in) * h.filter_h * h.filter_w);
  std::vector<TBitpacked> im2col(need_im2col ? im2col_shape.FlatSize() + 16 : 0);
  const int out_c = std::is_same<Dst, TBitpacked>::value ? Packed(h.channels_out) : h.channels_out;
  out.assign(static_cast<size_t>(h.batch) * out_h * out_w * out_c, Dst(0));
  tflite::CpuBackendContext ctx;
  // The accumulator width LCE's bconv2d.cc EvalChooseKernelType picks on 64-bit Arm.
  const int depth = h.filter_h * h.filter_w * h.channels_in;
  const bool int16 = RUY_PLATFORM_ARM_64 && depth + 512 < (1 << 16);
  // int16 accumulators, or float/int8 output, have a NEON kernel (core/bgemm/bgemm.h); else kStandardCpp.
  const bool neon = RUY_PLATFORM_NEON && (int16 || !std::is_same<Dst, TBitpacked>::value);
  const int pad_value = accumulators ? 1 : h.pad_value;  // accumulators: no zero-padding correction
  // Twice: ruy packs and caches the weights (kAlwaysCache) on the first call, as TFLite does on the first
  // inference; the second call is the steady state and is the one counted (phase 1; phase 4 = first call).
  for (const long phase : {4L, 1L}) {
    burn_edge_lane_phase(phase);
    if (int16)
      bconv2d::BConv2DOptimizedBGEMM<std::int16_t, Dst>(cp, g.input_shape, L.input.data(), g.filter_shape,
                                                        L.filter.data(), ot, g.output_shape, out.data(),
                                                        im2col_shape, need_im2col ? im2col.data() : nullptr,
                                                        padding_buffer.data(), pad_value, &ctx);
    else
      bconv2d::BConv2DOptimizedBGEMM<std::int32_t, Dst>(cp, g.input_shape, L.input.data(), g.filter_shape,
                                                        L.filter.data(), ot, g.output_shape, out.data(),
                                                        im2col_shape, need_im2col ? im2col.data() : nullptr,
                                                        padding_buffer.data(), pad_value, &ctx);
  }
  burn_edge_lane_phase(0);
  return std::string(neon ? "neon" : "portable") + " ruy " + (neon ? "kNeon" : "kStandardCpp") + " " +
         (int16 ? "int16" : "int32") + "-accumulator BGEMM";
}

template <typename Dst>
std::string RunIndirect(const Layer& L, bool accumulators, std::vector<Dst>& out) {
  const Header& h = L.h;
  Geometry g;
  MakeGeometry(h, g);
  Transform t = MakeTransform(L, accumulators);
  bconv2d::OutputTransform<Dst> ot;
  FillTransform(ot, t, L);
  std::vector<float> padding_buffer = PaddingBuffer(L, g, accumulators);
  const int out_c = std::is_same<Dst, TBitpacked>::value ? Packed(h.channels_out) : h.channels_out;
  tflite::RuntimeShape out_shape = Shape4(h.batch, g.output_shape.Dims(1), g.output_shape.Dims(2), out_c);
  out.assign(static_cast<size_t>(out_shape.FlatSize()) + 16, Dst(0));
  // As LCE's EvalOptIndirectBGEMM: select, pack the weights, fill the indirection buffer (once per model).
  std::unique_ptr<ib::Kernel> k = ib::SelectRuntimeKernel(&g.params, g.input_shape, out_shape, ot);
  k->PackWeights(L.filter.data());
  k->FillIndirectionBuffer(&g.params, g.input_shape, out_shape, L.input.data());
  const int pad_value = accumulators ? 1 : h.pad_value;
  burn_edge_lane_phase(1);
  bconv2d::BConv2DOptimizedIndirectBGEMM<Dst>(k.get(), &g.params, g.input_shape, out_shape, out.data(),
                                              padding_buffer.data(), pad_value);
  burn_edge_lane_phase(0);
  out.resize(out_shape.FlatSize());
  const bool portable = dynamic_cast<ib::Kernel4x2Portable<Dst>*>(k.get()) != nullptr;
  int status = 0;
  char* name = abi::__cxa_demangle(typeid(*k).name(), nullptr, nullptr, &status);
  std::string kernel = status == 0 && name ? name : typeid(*k).name();
  std::free(name);
  const auto cut = kernel.rfind("::", kernel.find('<'));  // drop the namespace
  if (cut != std::string::npos) kernel = kernel.substr(cut + 2);
  return std::string(portable ? "portable " : "neon ") + kernel;
}

template <typename Dst>
int Write(const char* path, const std::vector<Dst>& v) {
  std::FILE* f = std::fopen(path, "wb");
  if (!f) return Fail(std::string("cannot write ") + path);
  const bool ok = std::fwrite(v.data(), sizeof(Dst), v.size(), f) == v.size();
  return (std::fclose(f) == 0 && ok) ? 0 : Fail(std::string("short write to ") + path);
}

template <typename Dst>
int RunAndWrite(const std::string& mode, const Layer& L, const char* out_path) {
  std::vector<Dst> out;
  const bool acc = mode.rfind("acc-", 0) == 0;
  const std::string path = acc ? mode.substr(4) : mode;
  std::string kernel = path == "bgemm" ? RunBGemm<Dst>(L, acc, out) : RunIndirect<Dst>(L, acc, out);
  if (kernel.rfind("unsupported", 0) == 0) return Fail(kernel);
  std::printf("kernel=%s\n", kernel.c_str());
  return Write(out_path, out);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) return Fail("usage: driver bgemm|indirect|acc-bgemm|acc-indirect|bitpack LAYER_FILE OUT_FILE");
  const std::string mode = argv[1];
  std::FILE* f = std::fopen(argv[2], "rb");
  if (!f) return Fail(std::string("cannot read ") + argv[2]);
  Layer L;
  Header& h = L.h;
  if (std::fread(&h, sizeof h, 1, f) != 1 || h.magic != kMagic || h.version != 1)
    return Fail(std::string(argv[2]) + ": not a burn-edge layer file (version 1)");
  const size_t pixels = static_cast<size_t>(h.batch) * h.in_h * h.in_w;
  bool ok = ReadArray(f, L.input, pixels * Packed(h.channels_in)) &&
            ReadArray(f, L.filter, static_cast<size_t>(h.channels_out) * h.filter_h * h.filter_w *
                                       Packed(h.channels_in / h.groups)) &&
            ReadArray(f, L.multiplier, h.channels_out) && ReadArray(f, L.bias, h.channels_out) &&
            ReadArray(f, L.thresholds, h.channels_out);
  if (ok && h.has_float_input) ok = ReadArray(f, L.float_input, pixels * h.channels_in);
  std::fclose(f);
  if (!ok) return Fail(std::string(argv[2]) + ": truncated");

  if (mode == "bitpack") {
    if (!h.has_float_input) return Fail("bitpack: the layer file has no float input");
    std::vector<TBitpacked> out(pixels * Packed(h.channels_in) + 16);
    burn_edge_lane_phase(3);
    bitpacking::bitpack_matrix(L.float_input.data(), pixels, h.channels_in, out.data());
    burn_edge_lane_phase(0);
    out.resize(pixels * Packed(h.channels_in));
    // bitpack_matrix takes the aarch64 4x32 assembly only when rows need no padding bits (Cin % 32 == 0)
    // and there are at least 4 words; otherwise (and on other CPUs) the generic bitpack_bitfield.
    const bool neon_pack = AARCH64 && h.channels_in % 32 == 0 && pixels * Packed(h.channels_in) >= 4;
    std::printf("kernel=%s\n", neon_pack ? "neon bitpack_aarch64_4x32" : "portable bitpack_bitfield");
    return Write(argv[3], out);
  }
  if (mode != "bgemm" && mode != "indirect" && mode != "acc-bgemm" && mode != "acc-indirect")
    return Fail("unknown mode " + mode);
  const bool acc = mode.rfind("acc-", 0) == 0;
  if (acc || h.out_type == 0) return RunAndWrite<float>(mode, L, argv[3]);
  if (h.out_type == 1) return RunAndWrite<std::int8_t>(mode, L, argv[3]);
  if (h.out_type == 2) return RunAndWrite<TBitpacked>(mode, L, argv[3]);
  return Fail("unknown out_type");
}
