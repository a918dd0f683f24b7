// Declared bit widths and integer primitives of the Loihi fixed-point emulation.
//
// Every state variable and parameter of the integer engine has the width Loihi gives it; the
// constants below are the single source of those widths (the Python layer reads them through the
// binding, so error messages and checks agree everywhere).
#pragma once

#include <cstdint>

namespace ahpsim::loihi::bits {

// --- state ---------------------------------------------------------------------------------
constexpr int kStateBits = 24;                                  // u and v are 24-bit signed
constexpr std::int64_t kStateMax = (std::int64_t{1} << (kStateBits - 1)) - 1;   //  2^23 - 1
constexpr std::int64_t kStateMin = -(std::int64_t{1} << (kStateBits - 1));      // -2^23

// --- decays (12-bit, applied as x * (4096 - d) >> 12 with round toward zero) -----------------
constexpr int kDecayBits = 12;
constexpr int kDecayShift = kDecayBits;
constexpr std::int64_t kDecayUnity = std::int64_t{1} << kDecayBits;             // 4096
constexpr std::int64_t kDecayMax = kDecayUnity - 1;                              // 4095 (12 bits)

// --- weights ---------------------------------------------------------------------------------
constexpr int kWeightBits = 8;                   // mantissa magnitude bits
constexpr int kWeightMantMax = (1 << kWeightBits) - 1;      // 255
constexpr int kWeightMantMinMixed = -(1 << kWeightBits);    // -256 (Lava's mixed sign mode)
constexpr int kWeightExpBits = 4;                // signed exponent -8..7
constexpr int kWeightExpMin = -(1 << (kWeightExpBits - 1));  // -8
constexpr int kWeightExpMax = (1 << (kWeightExpBits - 1)) - 1;  // 7
constexpr int kActivationShift = 6;              // synaptic input is MSB-aligned by 2^6
constexpr std::int64_t kWeightLimit = (std::int64_t{1} << 21) - (std::int64_t{1} << 6);  // Loihi 1

// --- threshold / bias --------------------------------------------------------------------------
constexpr int kVthMantBits = 17;                 // unsigned
constexpr std::int64_t kVthMantMax = (std::int64_t{1} << kVthMantBits) - 1;      // 131071
constexpr int kVthShift = 6;                     // effective threshold = vth_mant << 6
constexpr int kBiasMantBits = 13;                // signed
constexpr std::int64_t kBiasMantMax = (std::int64_t{1} << (kBiasMantBits - 1)) - 1;  // 4095
constexpr std::int64_t kBiasMantMin = -(std::int64_t{1} << (kBiasMantBits - 1));     // -4096
constexpr int kBiasExpBits = 3;                  // unsigned
constexpr int kBiasExpMax = (1 << kBiasExpBits) - 1;                                 // 7

// --- delays / refractory -------------------------------------------------------------------------
constexpr int kDelayBits = 6;
constexpr int kDelayMax = 62;                    // synaptic delay field 0..62 (Loihi 1)
constexpr int kRefractoryBits = 6;
constexpr int kRefractoryMax = (1 << kRefractoryBits) - 1;                           // 63

// --- primitives --------------------------------------------------------------------------------
// Two's-complement wrap of x to `width` bits.
constexpr std::int64_t wrap_bits(std::int64_t x, int width) {
  const std::uint64_t m = (std::uint64_t{1} << width) - 1;
  std::uint64_t y = static_cast<std::uint64_t>(x) & m;
  if (y >> (width - 1)) y |= ~m;  // sign-extend
  return static_cast<std::int64_t>(y);
}
// int32 wrap (modular conversion: guaranteed by C++20, and by GCC/Clang/MSVC before it).
constexpr std::int64_t wrap32(std::int64_t x) {
  return static_cast<std::int32_t>(static_cast<std::uint32_t>(static_cast<std::uint64_t>(x)));
}

constexpr std::int64_t saturate(std::int64_t x, std::int64_t lo, std::int64_t hi) {
  return x < lo ? lo : (x > hi ? hi : x);
}

// x * (4096 - decay) / 4096 rounded toward zero (Loihi: sign(x) * ((|x| * (4096 - d)) >> 12)).
constexpr std::int64_t decay(std::int64_t x, std::int64_t decay_const) {
  const std::int64_t p = x * (kDecayUnity - decay_const);
  // branch-free form of (p >= 0 ? p >> 12 : -((-p) >> 12)): bias negatives by 4095 first
  return (p + ((p >> 63) & (kDecayUnity - 1))) >> kDecayShift;
}

// Arithmetic shift: left for s > 0, right (floor) for s < 0.
constexpr std::int64_t shift_floor(std::int64_t x, int s) {
  return s >= 0 ? x * (std::int64_t{1} << s) : (x >> (-s));
}
// Shift of the magnitude, sign re-applied (round toward zero for right shifts).
constexpr std::int64_t shift_toward_zero(std::int64_t x, int s) {
  return x >= 0 ? shift_floor(x, s) : -shift_floor(-x, s);
}

}  // namespace ahpsim::loihi::bits
