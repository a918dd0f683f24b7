#include "ahpsim/bptt.hpp"

#include <algorithm>
#include <exception>
#include <thread>
#include <vector>

#include "ahpsim/models.hpp"  // AHPSIM_RESTRICT, AHPSIM_CLONES

namespace ahpsim {
namespace bptt {

namespace {

// dst[i] += w[i] * x (x == 1: dst[i] += w[i]; the kernel's deliver() rounds the same way)
template <class Real>
AHPSIM_CLONES void add_scaled(Real* AHPSIM_RESTRICT dst, const Real* AHPSIM_RESTRICT w, Real x, std::int64_t n) {
  if (x == Real(1)) {
    for (std::int64_t i = 0; i < n; ++i) dst[i] += w[i];
  } else {
    for (std::int64_t i = 0; i < n; ++i) dst[i] += w[i] * x;
  }
}

// One step of all N neurons of one trial, in the float engine's order (models.hpp):
//   I = (slot + E) + bias;  c = rho_c c + beta_c z';  a = rho_a a + z';  A = v_th + beta_a a
//   v = ((alpha v + I) - c) - v_th z'      or (reset to zero)  ((alpha v) (1 - z') + I) - c
//   r = z' ? n_ref : max(r - 1, 0);  z = (v > A) & (r == 0)
// Branch-free over neurons (vectorizable); the slot is cleared for its next use.
template <bool Zero, bool Alif, bool Ref, class Real>
AHPSIM_CLONES void update(std::int64_t n, Real* AHPSIM_RESTRICT slot, const Real* AHPSIM_RESTRICT E,
                               const Real* AHPSIM_RESTRICT bias, Real* AHPSIM_RESTRICT v, Real* AHPSIM_RESTRICT c,
                               Real* AHPSIM_RESTRICT a, std::int32_t* AHPSIM_RESTRICT r, Real* AHPSIM_RESTRICT zp,
                               const Real* AHPSIM_RESTRICT alpha, const Real* AHPSIM_RESTRICT vth,
                               const Real* AHPSIM_RESTRICT rho_c, const Real* AHPSIM_RESTRICT beta_c,
                               const Real* AHPSIM_RESTRICT rho_a, const Real* AHPSIM_RESTRICT beta_a,
                               std::int32_t n_ref, Real* AHPSIM_RESTRICT z_out, Real* AHPSIM_RESTRICT v_out,
                               Real* AHPSIM_RESTRICT A_out, std::uint8_t* AHPSIM_RESTRICT free_out) {
  for (std::int64_t i = 0; i < n; ++i) {
    const Real zpf = zp[i];
    const Real I = (slot[i] + E[i]) + bias[i];
    slot[i] = Real(0);
    const Real cc = rho_c[i] * c[i] + beta_c[i] * zpf;
    c[i] = cc;
    Real thr = vth[i];
    if constexpr (Alif) {
      const Real aa = rho_a[i] * a[i] + zpf;
      a[i] = aa;
      thr = vth[i] + beta_a[i] * aa;
      A_out[i] = thr;
    }
    Real vn;
    if constexpr (Zero) {
      vn = ((alpha[i] * v[i]) * (Real(1) - zpf) + I) - cc;
    } else {
      vn = ((alpha[i] * v[i] + I) - cc) - vth[i] * zpf;
    }
    bool spike = vn > thr;
    if constexpr (Ref) {
      const std::int32_t dec = r[i] > 0 ? r[i] - 1 : 0;
      const std::int32_t rr = zpf != Real(0) ? n_ref : dec;
      r[i] = rr;
      free_out[i] = static_cast<std::uint8_t>(rr == 0);
      spike = spike && rr == 0;
    }
    const Real zf = spike ? Real(1) : Real(0);
    v[i] = vn;
    v_out[i] = vn;
    zp[i] = zf;
    z_out[i] = zf;
  }
}

template <class Real>
using UpdateFn = void (*)(std::int64_t, Real*, const Real*, const Real*, Real*, Real*, Real*, std::int32_t*, Real*,
                          const Real*, const Real*, const Real*, const Real*, const Real*, const Real*, std::int32_t,
                          Real*, Real*, Real*, std::uint8_t*);

template <class Real>
UpdateFn<Real> pick_update(bool zero, bool alif, bool ref) {
  const int key = (zero ? 4 : 0) | (alif ? 2 : 0) | (ref ? 1 : 0);
  switch (key) {
    case 0: return &update<false, false, false, Real>;
    case 1: return &update<false, false, true, Real>;
    case 2: return &update<false, true, false, Real>;
    case 3: return &update<false, true, true, Real>;
    case 4: return &update<true, false, false, Real>;
    case 5: return &update<true, false, true, Real>;
    case 6: return &update<true, true, false, Real>;
    default: return &update<true, true, true, Real>;
  }
}

// Runs fn(worker) on n_threads threads (the calling one included) and rethrows the first error.
template <class Fn>
void parallel(unsigned n_threads, Fn fn) {
  if (n_threads <= 1) {
    fn(0u);
    return;
  }
  std::vector<std::exception_ptr> errors(n_threads);
  std::vector<std::thread> pool;
  for (unsigned th = 1; th < n_threads; ++th)
    pool.emplace_back([&, th] {
      try {
        fn(th);
      } catch (...) {
        errors[th] = std::current_exception();
      }
    });
  try {
    fn(0u);
  } catch (...) {
    errors[0] = std::current_exception();
  }
  for (auto& t : pool) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

template <class Real>
void run_trial(const Layer<Real>& L, const LayerOutputs<Real>& out, std::int64_t b, const Real* zeros,
               UpdateFn<Real> step) {
  const std::int64_t T = L.T, B = L.B, N = L.N;
  const std::int64_t S = static_cast<std::int64_t>(L.max_delay) + 1;
  std::vector<Real> ring(static_cast<std::size_t>(S * N), Real(0));
  std::vector<Real> v(N, Real(0)), c(N, Real(0)), a(N, Real(0)), zp(N, Real(0));
  std::vector<std::int32_t> r(N, 0);
  std::vector<Real*> slot(S);  // slot[d]: the ring slot integrated d steps from now
  std::vector<std::int64_t> spikes;
  spikes.reserve(static_cast<std::size_t>(N));
  // outputs the caller does not keep (inference) are written to one step's scratch instead
  std::vector<Real> scratch_v(out.v ? 0 : N), scratch_A(out.A || !L.has_alif ? 0 : N);
  std::vector<std::uint8_t> scratch_free(out.free || L.n_ref == 0 ? 0 : N);
  const Real* bias = L.bias ? L.bias : zeros;
  for (std::int64_t t = 0; t < T; ++t) {
    for (std::int64_t d = 0; d < S; ++d) slot[d] = ring.data() + ((t + d) % S) * N;
    const std::int64_t row = t * B + b;
    // input events of this step, channels ascending
    if (L.x) {
      const Real* x = L.x + row * L.n_in;
      for (std::int64_t ch = 0; ch < L.n_in; ++ch) {
        const Real xv = x[ch];
        if (xv == Real(0)) continue;
        const Real* w = L.w_in + ch * N;
        if (!L.d_in) {
          add_scaled(slot[L.d_in_uniform], w, xv, N);
        } else {
          const std::int32_t* d = L.d_in + ch * N;
          if (xv == Real(1)) {
            for (std::int64_t i = 0; i < N; ++i) slot[d[i]][i] += w[i];
          } else {
            for (std::int64_t i = 0; i < N; ++i) slot[d[i]][i] += w[i] * xv;
          }
        }
      }
    }
    const std::int64_t o = row * N;
    step(N, slot[0], L.E ? L.E + o : zeros, bias, v.data(), c.data(), a.data(), r.data(), zp.data(), L.alpha, L.v_th,
         L.rho_c, L.beta_c, L.rho_a, L.beta_a, L.n_ref, out.z + o, out.v ? out.v + o : scratch_v.data(),
         out.A ? out.A + o : scratch_A.data(), out.free ? out.free + o : scratch_free.data());
    // this step's spikes into the ring, sources ascending
    spikes.clear();
    for (std::int64_t j = 0; j < N; ++j)
      if (zp[j] != Real(0)) spikes.push_back(j);
    for (const std::int64_t j : spikes) {
      const Real* w = L.w_rec + j * N;
      if (!L.d_rec) {
        add_scaled(slot[L.d_rec_uniform], w, Real(1), N);
      } else {
        const std::int32_t* d = L.d_rec + j * N;
        for (std::int64_t i = 0; i < N; ++i) slot[d[i]][i] += w[i];
      }
    }
  }
}

}  // namespace

template <class Real>
void forward(const Layer<Real>& L, const LayerOutputs<Real>& out, unsigned n_threads) {
  if (L.T <= 0 || L.B <= 0 || L.N <= 0) return;
  const std::vector<Real> zeros(static_cast<std::size_t>(L.N), Real(0));
  const UpdateFn<Real> step = pick_update<Real>(L.reset_zero, L.has_alif, L.n_ref > 0);
  const unsigned team = static_cast<unsigned>(std::max<std::int64_t>(1, std::min<std::int64_t>(n_threads, L.B)));
  parallel(team, [&](unsigned th) {
    for (std::int64_t b = th; b < L.B; b += team) run_trial(L, out, b, zeros.data(), step);
  });
}

template <class Real>
void delayed_outer(std::int64_t T, std::int64_t B, std::int64_t P, std::int64_t N, const Real* s, const Real* g,
                   const std::int32_t* d, std::int32_t d_uniform, Real* out, unsigned n_threads) {
  if (T <= 0 || B <= 0 || P <= 0 || N <= 0) return;
  const unsigned team = static_cast<unsigned>(std::max<std::int64_t>(1, std::min<std::int64_t>(n_threads, P)));
  parallel(team, [&](unsigned th) {
    const std::int64_t j0 = P * th / team, j1 = P * (th + 1) / team;
    for (std::int64_t t = 0; t < T; ++t) {
      if (!d && t + d_uniform >= T) break;
      for (std::int64_t b = 0; b < B; ++b) {
        const Real* srow = s + (t * B + b) * P;
        for (std::int64_t j = j0; j < j1; ++j) {
          const Real sv = srow[j];
          if (sv == Real(0)) continue;
          Real* dst = out + j * N;
          if (!d) {
            add_scaled(dst, g + ((t + d_uniform) * B + b) * N, sv, N);
          } else {
            const std::int32_t* dj = d + j * N;
            for (std::int64_t i = 0; i < N; ++i) {
              const std::int64_t tt = t + dj[i];
              if (tt < T) dst[i] += g[(tt * B + b) * N + i] * sv;
            }
          }
        }
      }
    }
  });
}

template void forward<float>(const Layer<float>&, const LayerOutputs<float>&, unsigned);
template void forward<double>(const Layer<double>&, const LayerOutputs<double>&, unsigned);
template void delayed_outer<float>(std::int64_t, std::int64_t, std::int64_t, std::int64_t, const float*, const float*,
                                   const std::int32_t*, std::int32_t, float*, unsigned);
template void delayed_outer<double>(std::int64_t, std::int64_t, std::int64_t, std::int64_t, const double*,
                                    const double*, const std::int32_t*, std::int32_t, double*, unsigned);

}  // namespace bptt
}  // namespace ahpsim
