// Neuron models of the float engine. Each model is a small struct: its per-neuron parameters live in
// PopulationParams (time constants in ms), derived constants (decays) are computed once before the
// loop in `prepare` (cf. NEST's pre_run_hook), and `step` advances one population by one time step
// over structure-of-arrays state. The equations are documented in docs/equations.md.
#pragma once

#include <cmath>
#include <cstring>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

namespace ahpsim {

enum class ModelKind : std::uint8_t { LIF = 0, ALIF = 1, AHP = 2, Readout = 3 };
enum class ResetMode : std::uint8_t { Subtract = 0, Zero = 1 };
// During the n_ref refractory steps: Block only suppresses spikes (v integrates, as in LSNN and Brian2's
// default); Clamp also holds v at 0, the reset value (Loihi, NEST, Brian2's `(unless refractory)`).
enum class RefractoryMode : std::uint8_t { Block = 0, Clamp = 1 };

inline const char* model_name(ModelKind k) {
  switch (k) {
    case ModelKind::LIF: return "LIF";
    case ModelKind::ALIF: return "ALIF";
    case ModelKind::AHP: return "AHP";
    case ModelKind::Readout: return "Readout";
  }
  return "?";
}

inline bool is_spiking(ModelKind k) { return k != ModelKind::Readout; }

// Parameters as the user gives them, one value per neuron.
struct PopulationParams {
  ModelKind kind = ModelKind::LIF;
  ResetMode reset = ResetMode::Subtract;
  RefractoryMode refractory = RefractoryMode::Block;
  std::vector<double> tau_m;    // ms; membrane time constant (Readout: its time constant tau)
  std::vector<double> tau_aux;  // ms; AHP: tau_ahp, ALIF: tau_a (unused otherwise)
  std::vector<double> beta;     // AHP: charge of c per spike; ALIF: threshold adaptation strength
  std::vector<double> v_th;     // threshold (same unit as v)
  std::vector<double> bias;     // constant input current per step
  std::vector<std::int32_t> n_ref;  // refractory period, steps
};

// decay = exp(-dt / tau), computed in double and rounded once to Real; tau = 0 means no carry-over.
inline double decay_of(double tau, double dt) { return tau == 0.0 ? 0.0 : std::exp(-dt / tau); }

// Derived constants of one population, in the engine's precision.
template <class Real>
struct PopulationConstants {
  std::vector<Real> alpha;  // membrane (or readout) decay per step
  std::vector<Real> rho;    // auxiliary-compartment decay per step
  std::vector<Real> beta, v_th, bias;
  std::vector<std::int32_t> n_ref;
  bool reset_zero = false;
  bool refractory_clamp = false;  // v held at 0 while refractory

  void prepare(const PopulationParams& p, double dt) {
    const std::size_t n = p.tau_m.size();
    alpha.resize(n); rho.resize(n); beta.resize(n); v_th.resize(n); bias.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      alpha[i] = static_cast<Real>(decay_of(p.tau_m[i], dt));
      rho[i] = static_cast<Real>(p.tau_aux.empty() ? 0.0 : decay_of(p.tau_aux[i], dt));
      beta[i] = static_cast<Real>(p.beta.empty() ? 0.0 : p.beta[i]);
      v_th[i] = static_cast<Real>(p.v_th.empty() ? 0.0 : p.v_th[i]);
      bias[i] = static_cast<Real>(p.bias[i]);
    }
    n_ref = p.n_ref;
    if (n_ref.empty()) n_ref.assign(n, 0);
    reset_zero = p.reset == ResetMode::Zero;
    refractory_clamp = p.refractory == RefractoryMode::Clamp;
  }
};

// Per-trial state of a whole network, structure of arrays indexed by global neuron index.
template <class Real>
struct StateView {
  Real* v;              // membrane voltage (Readout: output y)
  Real* aux;            // AHP: c (current fed back into the soma); ALIF: a (adaptation); else 0
  std::int32_t* refr;   // remaining refractory steps
  std::uint8_t* z;      // spike of the previous step (0/1)
  Real* in;             // this step's input slot of the delay ring buffer; read and cleared by step
};

// ---- models -------------------------------------------------------------------------------------
// `step(c, off, start, n, s)` advances neurons [start, start + n) whose constants start at c[off] (a
// thread may own part of a population). Each step is one branch-free loop over the population (so the compiler can vectorize it); it writes
// this step's spikes into z, and the engine collects them afterwards (collect_spikes). Arithmetic
// order is fixed and mirrored exactly by the numpy reference and ahpsim.torch:
//   v = ((alpha * v + I) - c) - v_th * z_prev.

#if defined(__GNUC__) || defined(__clang__)
#define AHPSIM_RESTRICT __restrict__
#else
#define AHPSIM_RESTRICT
#endif

// Hot loops compiled for AVX-512 (x86-64-v4, GCC >= 12), AVX2 and the baseline, chosen at load time
// (wheels stay portable). Every element's arithmetic is the same sequence of IEEE operations in all of
// them (no FMA contraction, no reassociated sums), so they give identical results; the wider vectors
// halve the instructions of the row additions that dominate the backward pass.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && __GNUC__ >= 12
#define AHPSIM_CLONES __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#elif defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define AHPSIM_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define AHPSIM_CLONES
#endif

namespace detail {
// Remaining refractory steps after this update (spikes allowed when 0).
inline std::int32_t refractory(std::int32_t zp, std::int32_t r, std::int32_t n_ref) {
  const std::int32_t dec = r > 0 ? r - 1 : 0;
  return zp ? n_ref : dec;
}

// Soma update shared by the spiking models. Reset by subtraction, or (Zero) the leak term dropped
// after a spike; `ahp` is the AHP current (0 for LIF/ALIF, a compile-time choice below).
template <bool Zero, class Real>
inline Real soma(Real v, Real I, Real ahp, Real zpf, Real alpha, Real vth) {
  if constexpr (Zero) {
    return ((alpha * v) * (Real(1) - zpf) + I) - ahp;
  } else {
    return ((alpha * v + I) - ahp) - vth * zpf;
  }
}

enum class Aux { None, AHP, ALIF };

// One population, one step: free function with restrict parameters so that GCC/Clang vectorize it.
template <Aux kind, bool Zero, class Real>
AHPSIM_CLONES void spiking_step(std::uint32_t n, Real* AHPSIM_RESTRICT v, Real* AHPSIM_RESTRICT aux,
                  std::int32_t* AHPSIM_RESTRICT refr, std::uint8_t* AHPSIM_RESTRICT z, Real* AHPSIM_RESTRICT in,
                  const Real* AHPSIM_RESTRICT alpha, const Real* AHPSIM_RESTRICT rho,
                  const Real* AHPSIM_RESTRICT beta, const Real* AHPSIM_RESTRICT vth,
                  const Real* AHPSIM_RESTRICT bias, const std::int32_t* AHPSIM_RESTRICT nref, bool clamp) {
  for (std::uint32_t i = 0; i < n; ++i) {
    const std::int32_t zp = z[i];
    const Real zpf = static_cast<Real>(zp);
    const Real I = in[i] + bias[i];
    in[i] = Real(0);
    Real thr = vth[i];
    Real ahp = Real(0);
    if constexpr (kind == Aux::AHP) {
      // charged by the previous step's spike, enters the soma at once as a negative current
      ahp = rho[i] * aux[i] + beta[i] * zpf;
      aux[i] = ahp;
    } else if constexpr (kind == Aux::ALIF) {
      const Real a = rho[i] * aux[i] + zpf;
      aux[i] = a;
      thr = vth[i] + beta[i] * a;
    }
    Real vn;
    if constexpr (kind == Aux::AHP) {
      vn = soma<Zero>(v[i], I, ahp, zpf, alpha[i], vth[i]);
    } else if constexpr (Zero) {
      vn = (alpha[i] * v[i]) * (Real(1) - zpf) + I;
    } else {
      vn = (alpha[i] * v[i] + I) - vth[i] * zpf;
    }
    const std::int32_t r = refractory(zp, refr[i], nref[i]);
    refr[i] = r;
    v[i] = (clamp & (r != 0)) ? Real(0) : vn;
    z[i] = static_cast<std::uint8_t>((vn > thr) & (r == 0));
  }
}

template <Aux kind, class Real>
void spiking_step(const PopulationConstants<Real>& c, std::uint32_t off, std::uint32_t start, std::uint32_t n,
                  const StateView<Real>& s) {
  auto call = [&](auto zero) {
    spiking_step<kind, decltype(zero)::value, Real>(n, s.v + start, s.aux + start, s.refr + start, s.z + start,
                                                    s.in + start, c.alpha.data() + off, c.rho.data() + off,
                                                    c.beta.data() + off, c.v_th.data() + off, c.bias.data() + off,
                                                    c.n_ref.data() + off, c.refractory_clamp);
  };
  c.reset_zero ? call(std::true_type{}) : call(std::false_type{});
}
}  // namespace detail

// v[t] = alpha v[t-1] + I[t] - v_th z[t-1]
struct LIFModel {
  template <class Real>
  static void step(const PopulationConstants<Real>& c, std::uint32_t off, std::uint32_t start, std::uint32_t n,
                   const StateView<Real>& s) {
    detail::spiking_step<detail::Aux::None>(c, off, start, n, s);
  }
};

// c[t] = rho c[t-1] + beta z[t-1];  v[t] = alpha v[t-1] + I[t] - c[t] - v_th z[t-1]
struct AHPModel {
  template <class Real>
  static void step(const PopulationConstants<Real>& c, std::uint32_t off, std::uint32_t start, std::uint32_t n,
                   const StateView<Real>& s) {
    detail::spiking_step<detail::Aux::AHP>(c, off, start, n, s);
  }
};

// a[t] = rho a[t-1] + z[t-1];  threshold v_th + beta a[t]
struct ALIFModel {
  template <class Real>
  static void step(const PopulationConstants<Real>& c, std::uint32_t off, std::uint32_t start, std::uint32_t n,
                   const StateView<Real>& s) {
    detail::spiking_step<detail::Aux::ALIF>(c, off, start, n, s);
  }
};

struct ReadoutModel {
  template <class Real>
  static void step(const PopulationConstants<Real>& c, std::uint32_t off, std::uint32_t start, std::uint32_t n,
                   const StateView<Real>& s) {
    Real* v = s.v + start;
    Real* in = s.in + start;
    const Real* kappa = c.alpha.data() + off;
    const Real* bias = c.bias.data() + off;
    for (std::uint32_t i = 0; i < n; ++i) {
      const Real I = in[i] + bias[i];
      in[i] = Real(0);
      v[i] = kappa[i] * v[i] + I;
    }
  }
};

// Appends the ids (start + i) of the neurons with z != 0, scanning 8 flags at a time: spikes are sparse.
template <class Vec>
inline void collect_spikes(const std::uint8_t* z, std::uint32_t start, std::uint32_t n, Vec& out) {
  std::uint32_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t word;
    std::memcpy(&word, z + i, 8);
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    // z is 0/1 per byte: each set bit is a spike, at bit 8k for neuron i + k
    for (; word; word &= word - 1) out.push_back(start + i + static_cast<std::uint32_t>(__builtin_ctzll(word) >> 3));
#else
    if (word == 0) continue;
    for (std::uint32_t k = 0; k < 8; ++k)
      if (z[i + k]) out.push_back(start + i + k);
#endif
  }
  for (; i < n; ++i)
    if (z[i]) out.push_back(start + i);
}

}  // namespace ahpsim
