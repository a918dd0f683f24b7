// Training kernels for ahpsim.torch: the forward pass of one recurrent spiking layer over a whole
// sequence (event-driven, in the float engine's arithmetic order) and the spike-sparse weight gradient.
// No Python and no torch here: plain arrays in, plain arrays out; the autograd glue lives in
// python/ahpsim/torch/functional.py.
#pragma once

#include <cstdint>

namespace ahpsim {
namespace bptt {

// One heterogeneous layer of N neurons (LIF, AHP and ALIF neurons share one set of equations: LIF has
// beta_c = beta_a = 0, so c stays 0 and the threshold stays v_th exactly). Arrays are row-major.
template <class Real>
struct Layer {
  std::int64_t T = 0, B = 0, N = 0;  // steps, trials, neurons
  // per-neuron constants [N]
  const Real* alpha = nullptr;   // membrane decay per step
  const Real* v_th = nullptr;    // threshold
  const Real* rho_c = nullptr;   // AHP current decay per step
  const Real* beta_c = nullptr;  // AHP charge per spike (0 for non-AHP neurons)
  const Real* rho_a = nullptr;   // ALIF adaptation decay per step
  const Real* beta_a = nullptr;  // ALIF threshold adaptation strength (0 for non-ALIF neurons)
  const Real* bias = nullptr;    // [N] or null
  std::int32_t n_ref = 0;        // refractory steps
  // while refractory, v is clamped at 0 (as on Loihi, in NEST and in Brian2's `unless refractory`)
  // instead of integrating with only its spikes blocked
  bool refractory_clamp = false;
  bool reset_zero = false;       // reset to zero (drop the leak term) instead of subtracting v_th
  bool has_ahp = true, has_alif = true;
  // external input: either events x [T, B, n_in] through w_in (delivered like the kernel's input
  // projections) or a dense current E [T, B, N] added after the ring slot (or neither)
  std::int64_t n_in = 0;
  const Real* x = nullptr;
  const std::uint8_t* x_events = nullptr;  // instead of x: 0/1 bytes (bool spikes), each event of weight 1
  bool x_batch_major = false;              // x / x_events laid out [B, T, n_in] (torch's batch-first input)
  const Real* w_in = nullptr;           // [n_in, N], pre-major (one row per input channel)
  const std::int32_t* d_in = nullptr;   // [n_in, N] delays >= 0, or null: all d_in_uniform
  std::int32_t d_in_uniform = 0;
  const Real* E = nullptr;
  // recurrent synapses
  const Real* w_rec = nullptr;          // [N, N], pre-major
  const std::int32_t* d_rec = nullptr;  // [N, N] delays >= 1, or null: all d_rec_uniform
  std::int32_t d_rec_uniform = 1;
  std::int32_t max_delay = 1;           // the largest delay of d_in and d_rec
  // leaky readout (optional, n_out > 0): y[t] = kappa y[t-1] + (sum_j W_out[k, j] z_j[t - d_out] + b_out),
  // the spikes delivered by source ascending, as the exported network's readout population
  std::int64_t n_out = 0;
  const Real* w_out = nullptr;          // [n_out, N] (torch's layout)
  const Real* b_out = nullptr;          // [n_out] or null
  const Real* kappa = nullptr;          // [n_out] readout decay per step
  std::int32_t d_out = 1;               // >= 0
};

// Outputs of the forward pass, [T, B, N] each; v, A and free may be null (not kept: inference).
template <class Real>
struct LayerOutputs {
  Real* z = nullptr;             // spikes 0/1
  Real* v = nullptr;             // membrane voltage after the update
  Real* A = nullptr;             // threshold (ALIF)
  std::uint8_t* free = nullptr;  // 1 where the neuron was not refractory
  Real* y = nullptr;             // [T, B, n_out] readout (Layer::n_out > 0)
  // the spikes again, compactly (optional): [T, B, spike_words(N)] words, bit i % 64 of word i / 64
  // set where neuron i spiked; what the weight gradients read (1/32 of z's bytes, no scan of zeros)
  std::uint64_t* z_bits = nullptr;
};

// Words of a spike bit row of N neurons.
inline std::int64_t spike_words(std::int64_t n) { return (n + 63) / 64; }

// Runs the layer over T steps for all B trials (trials split over n_threads; results do not depend on
// n_threads). Per step, as the kernel: input events into the delay ring buffer (channels ascending),
// neuron update I = slot (+ E) (+ bias), then this step's spikes into the ring (sources ascending).
template <class Real>
void forward(const Layer<Real>& L, const LayerOutputs<Real>& out, unsigned n_threads);

// Surrogate pseudo-derivatives psi(x) of the spike w.r.t. the normalised voltage x = (v - A) / A
// (ahpsim.torch's Triangle, FastSigmoid and Gaussian): dz/dv = psi / A, dz/dA = -psi v / A^2.
enum class SurrogateKind : std::int32_t { Triangle = 0, FastSigmoid = 1, Gaussian = 2 };

template <class Real>
struct Surrogate {
  SurrogateKind kind = SurrogateKind::Triangle;
  Real dampening = Real(0.3);  // psi(0)
  Real slope = Real(10);       // FastSigmoid: dampening / (1 + slope |x|)^2
  Real sigma = Real(0.5);      // Gaussian: dampening exp(-x^2 / (2 sigma^2))
};

// What the backward pass of a layer needs besides the Layer (constants, w_rec, delays): the loss
// gradient reaching the spikes from the layer's users and the state kept by forward().
template <class Real>
struct LayerGrad {
  const Real* G = nullptr;             // [T, B, N] dL/dz from outside the layer, or null (zero)
  const Real* G_rate = nullptr;        // [N] dL/dz added at every step and trial (a rate loss), or null
  const Real* Gy = nullptr;            // [T, B, n_out] dL/dy of the readout (Layer::n_out > 0), or null
  bool Gy_batch_major = false;         // Gy laid out [B, T, n_out] (the gradient of torch's batch-first y)
  Real* gU = nullptr;                  // out: [T, B, n_out] dL/d(readout input) (Layer::n_out > 0)
  // out (optional, trainable time constants): per-trial gradients [B, N] w.r.t. the decays alpha,
  // rho_c (AHP) and rho_a (ALIF); c and a are recomputed from the spikes
  Real* g_alpha = nullptr;
  Real* g_rho_c = nullptr;
  Real* g_rho_a = nullptr;
  const Real* z = nullptr;             // [T, B, N] spikes of forward()
  // the same spikes as LayerOutputs::z_bits rows [T, B, spike_words(N)], or null; read instead of z
  // when given (1/32 of the bytes; on the 2-core test machine the step's time did not change)
  const std::uint64_t* z_bits = nullptr;
  const Real* v = nullptr;             // [T, B, N] voltages of forward()
  const Real* A = nullptr;             // [T, B, N] ALIF thresholds (has_alif), else null
  const std::uint8_t* free = nullptr;  // [T, B, N] non-refractory flags (n_ref > 0), else null
  const Real* w_post = nullptr;        // [N, N] recurrent weights post-major ([post, pre], torch's layout)
  const std::int32_t* d_post = nullptr;  // [N, N] delays post-major, or null: Layer::d_rec_uniform
  bool detach_reset = false;           // no gradient through the reset term
  Surrogate<Real> surrogate;
  // out (optional, uniform delays only): the weight gradients, accumulated while each gI row is still in
  // cache instead of by delayed_outer over gI afterwards. Pre-major, added to:
  //   g_w_rec[j, i] += sum_{t,b} z[t, b, j] gI[t + d_rec_uniform, b, i]        [N, N]
  //   g_w_in[j, i]  += sum_{t,b} x[t, b, j] gI[t + d_in_uniform, b, i]          [n_in, N]
  // (x: Layer::x or x_events, x_batch_major, n_in, d_in_uniform). Each trial group of
  // kWeightGradGroup trials sums its terms (steps descending, trials ascending) into its own array,
  // and the groups are added in order: results do not depend on n_threads.
  Real* g_w_rec = nullptr;
  Real* g_w_in = nullptr;
};

// Trials per group of the fused weight gradients (LayerGrad::g_w_rec / g_w_in): threads take whole
// groups, so at most ceil(B / kWeightGradGroup) threads work on them.
constexpr std::int64_t kWeightGradGroup = 8;

// BPTT of one layer (and its readout): writes gI [T, B, N] = dL/dI[t] (the gradient of the loss w.r.t. each neuron's
// input current, which gives every weight and bias gradient by delayed_outer / sums, or with uniform
// delays LayerGrad::g_w_rec / g_w_in during the pass) and, with a readout, gU = dL/d(readout input)
// (W_out: delayed_outer(z, gU, d_out); b_out: sum of gU). Trials are split over n_threads in
// contiguous blocks (whole kWeightGradGroup groups with fused weight gradients), walked back in chunks
// of trials step by step; each trial's arithmetic is sequential, so results do not depend on n_threads.
// The recurrent back-projection W^T dL/dI[t] is computed only for the neurons whose surrogate
// derivative (or reset) is non-zero at step t when all neurons share one membrane decay: then
// W^T dL/dI[t] = W^T r[t] + alpha W^T dL/dI[t+1], with r[t] non-zero only near threshold and at spikes.
template <class Real>
void backward(const Layer<Real>& L, const LayerGrad<Real>& in, Real* gI, unsigned n_threads);

// Presynaptic activity of a projection for delayed_outer: values s [T, B, P] (mostly zeros: spikes),
// 0/1 bytes (bool spikes), time-major or batch-major ([B, T, P]), or spike bits [T, B, spike_words(P)].
template <class Real>
struct Activity {
  const Real* s = nullptr;
  const std::uint8_t* events = nullptr;  // instead of s
  const std::uint64_t* bits = nullptr;   // instead of s: LayerOutputs::z_bits rows (time-major)
  bool batch_major = false;
};

// out[j, i] += sum_{t, b} s[t, b, j] * g[t + d(j, i), b, i] (terms with t + d >= T dropped): the weight
// gradient of a delayed projection with presynaptic activity s and postsynaptic current gradient
// g [T, B, N]; d is [P, N] or null (all d_uniform). out is [P, N]. Work is proportional to the number
// of non-zeros of s; rows j are split over n_threads; each out[j, i] sums its terms in (t, b) order,
// so results do not depend on n_threads.
template <class Real>
void delayed_outer(std::int64_t T, std::int64_t B, std::int64_t P, std::int64_t N, const Activity<Real>& s,
                   const Real* g, const std::int32_t* d, std::int32_t d_uniform, Real* out, unsigned n_threads);

}  // namespace bptt
}  // namespace ahpsim
