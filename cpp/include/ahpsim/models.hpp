// Neuron models of the float engine. Each model is a small struct: its per-neuron parameters live in
// PopulationParams (time constants in ms), derived constants (decays) are computed once before the
// loop in `prepare` (cf. NEST's pre_run_hook), and `step` advances one population by one time step
// over structure-of-arrays state. The equations are documented in docs/equations.md.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace ahpsim {

enum class ModelKind : std::uint8_t { LIF = 0, ALIF = 1, AHP = 2, Readout = 3 };
enum class ResetMode : std::uint8_t { Subtract = 0, Zero = 1 };

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
// All spiking models share the soma update; they differ in the auxiliary compartment.

struct LIFModel {
  template <class Real, class Spike>
  static void step(const PopulationConstants<Real>& c, std::uint32_t start, std::uint32_t n,
                   const StateView<Real>& s, Spike&& on_spike) {
    for (std::uint32_t i = 0; i < n; ++i) {
      const std::uint32_t j = start + i;
      const bool zp = s.z[j] != 0;
      const Real I = s.in[j] + c.bias[i];
      s.in[j] = Real(0);
      Real v = c.reset_zero ? (zp ? Real(0) : c.alpha[i] * s.v[j]) + I
                            : (c.alpha[i] * s.v[j] + I) - (zp ? c.v_th[i] : Real(0));
      const std::int32_t r = zp ? c.n_ref[i] : (s.refr[j] > 0 ? s.refr[j] - 1 : 0);
      s.refr[j] = r;
      s.v[j] = v;
      const bool z = (v > c.v_th[i]) && r == 0;
      s.z[j] = z;
      if (z) on_spike(j);
    }
  }
};

struct AHPModel {
  template <class Real, class Spike>
  static void step(const PopulationConstants<Real>& c, std::uint32_t start, std::uint32_t n,
                   const StateView<Real>& s, Spike&& on_spike) {
    for (std::uint32_t i = 0; i < n; ++i) {
      const std::uint32_t j = start + i;
      const bool zp = s.z[j] != 0;
      const Real I = s.in[j] + c.bias[i];
      s.in[j] = Real(0);
      // The AHP compartment is charged by the previous step's spike and enters the soma at once.
      const Real ahp = c.rho[i] * s.aux[j] + (zp ? c.beta[i] : Real(0));
      s.aux[j] = ahp;
      Real v = c.reset_zero ? ((zp ? Real(0) : c.alpha[i] * s.v[j]) + I) - ahp
                            : ((c.alpha[i] * s.v[j] + I) - ahp) - (zp ? c.v_th[i] : Real(0));
      const std::int32_t r = zp ? c.n_ref[i] : (s.refr[j] > 0 ? s.refr[j] - 1 : 0);
      s.refr[j] = r;
      s.v[j] = v;
      const bool z = (v > c.v_th[i]) && r == 0;
      s.z[j] = z;
      if (z) on_spike(j);
    }
  }
};

struct ALIFModel {
  template <class Real, class Spike>
  static void step(const PopulationConstants<Real>& c, std::uint32_t start, std::uint32_t n,
                   const StateView<Real>& s, Spike&& on_spike) {
    for (std::uint32_t i = 0; i < n; ++i) {
      const std::uint32_t j = start + i;
      const bool zp = s.z[j] != 0;
      const Real I = s.in[j] + c.bias[i];
      s.in[j] = Real(0);
      const Real a = c.rho[i] * s.aux[j] + (zp ? Real(1) : Real(0));
      s.aux[j] = a;
      const Real thr = c.v_th[i] + c.beta[i] * a;
      Real v = c.reset_zero ? (zp ? Real(0) : c.alpha[i] * s.v[j]) + I
                            : (c.alpha[i] * s.v[j] + I) - (zp ? c.v_th[i] : Real(0));
      const std::int32_t r = zp ? c.n_ref[i] : (s.refr[j] > 0 ? s.refr[j] - 1 : 0);
      s.refr[j] = r;
      s.v[j] = v;
      const bool z = (v > thr) && r == 0;
      s.z[j] = z;
      if (z) on_spike(j);
    }
  }
};

struct ReadoutModel {
  template <class Real>
  static void step(const PopulationConstants<Real>& c, std::uint32_t start, std::uint32_t n,
                   const StateView<Real>& s) {
    for (std::uint32_t i = 0; i < n; ++i) {
      const std::uint32_t j = start + i;
      const Real I = s.in[j] + c.bias[i];
      s.in[j] = Real(0);
      s.v[j] = c.alpha[i] * s.v[j] + I;
    }
  }
};

}  // namespace ahpsim
