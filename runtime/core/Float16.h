//===- Float16.h - Half and bfloat16 conversions ----------------*- C++ -*-===//
//
// Bit-exact conversions between float32 and the 16-bit float formats, used
// where files and plans disagree on precision (f32 weights for a bf16 plan,
// bf16 outputs written as f32 .npy). Rounding is to nearest, ties to even;
// NaN stays NaN.
//
//===----------------------------------------------------------------------===//

#ifndef COLOSSAL_RUNTIME_CORE_FLOAT16_H
#define COLOSSAL_RUNTIME_CORE_FLOAT16_H

#include <cmath>
#include <cstdint>
#include <cstring>

namespace colossal::rt {

inline float bitsToFloat(uint32_t w) {
  float f;
  std::memcpy(&f, &w, 4);
  return f;
}
inline uint32_t floatToBits(float f) {
  uint32_t w;
  std::memcpy(&w, &f, 4);
  return w;
}

// Half conversions follow Maratyszcza's FP16 library: exact for every half,
// round-to-nearest-even for float -> half, NaN stays NaN.
inline float halfToFloat(uint16_t h) {
  const uint32_t w = static_cast<uint32_t>(h) << 16;
  const uint32_t sign = w & 0x80000000u;
  const uint32_t twoW = w + w;
  const float normalized =
      bitsToFloat((twoW >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
  const float denormalized = bitsToFloat((twoW >> 17) | (126u << 23)) - 0.5f;
  const uint32_t result = sign | (twoW < (1u << 27) ? floatToBits(denormalized)
                                                    : floatToBits(normalized));
  return bitsToFloat(result);
}

inline uint16_t floatToHalf(float f) {
  float base = (std::abs(f) * 0x1.0p+112f) * 0x1.0p-110f;
  const uint32_t w = floatToBits(f);
  const uint32_t shl1W = w + w;
  const uint32_t sign = w & 0x80000000u;
  uint32_t bias = shl1W & 0xFF000000u;
  if (bias < 0x71000000u)
    bias = 0x71000000u;
  base = bitsToFloat((bias >> 1) + 0x07800000u) + base;
  const uint32_t bits = floatToBits(base);
  const uint32_t expBits = (bits >> 13) & 0x00007C00u;
  const uint32_t mantissaBits = bits & 0x00000FFFu;
  const uint32_t nonsign = expBits + mantissaBits;
  return static_cast<uint16_t>((sign >> 16) |
                               (shl1W > 0xFF000000u ? 0x7E00u : nonsign));
}

inline float bf16ToFloat(uint16_t b) {
  return bitsToFloat(static_cast<uint32_t>(b) << 16);
}

inline uint16_t floatToBf16(float f) {
  uint32_t w = floatToBits(f);
  if ((w & 0x7fffffffu) > 0x7f800000u) // NaN: keep it quiet, never Inf
    return static_cast<uint16_t>((w >> 16) | 0x0040u);
  w += 0x7fffu + ((w >> 16) & 1u);
  return static_cast<uint16_t>(w >> 16);
}

} // namespace colossal::rt

#endif // COLOSSAL_RUNTIME_CORE_FLOAT16_H
