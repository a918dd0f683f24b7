// Rule sets of the Loihi integer engine. The engine (engine.hpp) is a template over one of these;
// each rule set is a stateless struct of constexpr limits and static arithmetic. Every difference
// between the two is listed in docs/loihi.md.
#pragma once

#include <cstdint>

#include "ahpsim/loihi/bits.hpp"

namespace ahpsim::loihi {

// (a) Lava 0.10's `bit_accurate_loihi` CPU models: PyLifModelBitAcc fed by PyDenseModelBitAcc.
struct LavaRules {
  static constexpr const char* kName = "lava";
  static constexpr std::int64_t kDuMax = bits::kDecayMax;           // du + 1 (ds_offset) <= 4096
  static constexpr std::int64_t kDvMax = bits::kDecayMax;
  static constexpr int kWeightMantMin = bits::kWeightMantMinMixed;  // -256 (clip/truncate in Python)
  static constexpr int kWeightMantMax = bits::kWeightMantMax;       //  255
  static constexpr int kDelayMax = 0;             // Dense has no synaptic delay field
  static constexpr int kRefractoryMin = 1, kRefractoryMax = 1;       // LIF has no refractory period
  static constexpr bool kMultiCompartment = false;
  static constexpr int kInputLatency = 1;         // RingBuffer -> Dense -> LIF: one step
  static constexpr int kRecurrentLatency = 1;     // LIF -> Dense -> LIF: one step
  static constexpr bool kExponentOnSum = true;    // Dense shifts the summed mantissas
  static constexpr bool kTrialLanes = false;      // int32 wraps between stages: scalar path only

  // Per-synapse value stored in the accumulator: the raw mantissa.
  static constexpr std::int64_t synapse_weight(std::int64_t mant, int /*exp*/) { return mant; }
  // One Dense process's output: int32 sum of mantissas, shifted by weight_exp (left, or
  // arithmetic right = floor), held in int32.
  static constexpr std::int64_t projection_output(std::int64_t raw_sum, int exp) {
    return bits::wrap32(bits::shift_floor(bits::wrap32(raw_sum), exp));
  }
  // LIF.a_in sums its Dense inputs (int32) and shifts the sum left by 6 (int32).
  static constexpr std::int64_t activation(std::int64_t summed) {
    return bits::wrap32(bits::wrap32(summed) * (std::int64_t{1} << bits::kActivationShift));
  }
  // u <- decay(u, du + 1) + a_in, then Lava's one-shot 24-bit wrap: values > 2^23 lose 2^24,
  // values <= -2^23 gain 2^24 (so +2^23 itself stays, -2^23 becomes +2^23).
  // (update_u = wrap_u(u_unwrapped(...)); the engine uses the two parts to count wraps.)
  static constexpr std::int64_t u_unwrapped(std::int64_t u, std::int64_t du, std::int64_t act) {
    return bits::wrap32(bits::decay(u, du + 1) + act);
  }
  static constexpr std::int64_t wrap_u(std::int64_t x) {
    constexpr std::int64_t lim = std::int64_t{1} << (bits::kStateBits - 1);
    if (x > lim) return x - 2 * lim;
    if (x <= -lim) return x + 2 * lim;
    return x;
  }
  static constexpr std::int64_t update_u(std::int64_t u, std::int64_t du, std::int64_t act) {
    return wrap_u(u_unwrapped(u, du, act));
  }
  static constexpr std::int64_t decay_v(std::int64_t v, std::int64_t dv) {
    return bits::decay(v, dv);  // dm_offset = 0
  }
};

// (b) Loihi 1 as NxSDK documents it and as the paper's authors used it.
struct Loihi1Rules {
  static constexpr const char* kName = "loihi1";
  static constexpr std::int64_t kDuMax = bits::kDecayUnity;         // 4096: u does not carry over
  static constexpr std::int64_t kDvMax = bits::kDecayMax;
  static constexpr int kWeightMantMin = -bits::kWeightMantMax;      // sign + 8-bit magnitude
  static constexpr int kWeightMantMax = bits::kWeightMantMax;
  static constexpr int kDelayMax = bits::kDelayMax;                 // 0..62
  static constexpr int kRefractoryMin = 1, kRefractoryMax = bits::kRefractoryMax;
  static constexpr bool kMultiCompartment = true;
  static constexpr int kInputLatency = 0;         // an input spike at t is integrated at t + delay
  static constexpr int kRecurrentLatency = 1;     // compartment spikes: at t + 1 + delay
  static constexpr bool kExponentOnSum = false;   // scaling per synapse
  // Trials may run side by side in double lanes (engine.hpp, run_lanes): every value is an integer
  // below 2^53 and the decay's product x * (4096 - d) has at most 37 bits, so it is exact there.
  static constexpr bool kTrialLanes = true;

  // Per-synapse effective weight: mantissa * 2^(6 + exp) held with its 6 low bits zero, i.e.
  // floor(mantissa * 2^exp) * 2^6 (for exp < 0 the bits below 2^6 are dropped, rounding toward
  // -inf), within +-(2^21 - 2^6). This is Brian2Loihi's chip-checked synapse model.
  static constexpr std::int64_t synapse_weight(std::int64_t mant, int exp) {
    const std::int64_t w = bits::shift_floor(mant, exp) * (std::int64_t{1} << bits::kActivationShift);
    return bits::saturate(w, -bits::kWeightLimit, bits::kWeightLimit);
  }
  static constexpr std::int64_t projection_output(std::int64_t raw_sum, int /*exp*/) {
    return raw_sum;
  }
  static constexpr std::int64_t activation(std::int64_t summed) { return summed; }
  // u <- decay(u, du) + input, wrapped to 24-bit two's complement.
  static constexpr std::int64_t u_unwrapped(std::int64_t u, std::int64_t du, std::int64_t act) {
    return bits::decay(u, du) + act;
  }
  static constexpr std::int64_t wrap_u(std::int64_t x) { return bits::wrap_bits(x, bits::kStateBits); }
  static constexpr std::int64_t update_u(std::int64_t u, std::int64_t du, std::int64_t act) {
    return wrap_u(u_unwrapped(u, du, act));
  }
  static constexpr std::int64_t decay_v(std::int64_t v, std::int64_t dv) {
    return bits::decay(v, dv);
  }
};

}  // namespace ahpsim::loihi
