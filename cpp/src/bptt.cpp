#include "ahpsim/bptt.hpp"

#include <algorithm>
#include <cmath>
#include <exception>
#include <thread>
#include <type_traits>
#include <vector>

#include "ahpsim/models.hpp"  // AHPSIM_RESTRICT, AHPSIM_CLONES

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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

// Indices of the non-zero entries of x, ascending; returns their count. SSE2 compares build a bit mask
// per 16 entries; each 4-bit group writes its four candidate indices from a table and advances by its
// popcount, without a branch per set bit (spike and gradient rows are irregular: such branches
// mispredict). rows needs room for n + 3 entries.
struct NibbleTable {
  std::int64_t idx[16][4];
  std::int64_t count[16];
  constexpr NibbleTable() : idx(), count() {
    for (int m = 0; m < 16; ++m) {
      int c = 0;
      for (int b = 0; b < 4; ++b)
        if (m >> b & 1) idx[m][c++] = b;
      count[m] = c;
    }
  }
};
constexpr NibbleTable kNibbles{};

template <int Groups>  // 4-bit groups in mask
inline std::int64_t append_bits(unsigned mask, std::int64_t base, std::int64_t* rows, std::int64_t k) {
  for (int q = 0; q < Groups; ++q) {
    const unsigned nib = (mask >> (4 * q)) & 15u;
    const std::int64_t b = base + 4 * q;
    for (int e = 0; e < 4; ++e) rows[k + e] = b + kNibbles.idx[nib][e];
    k += kNibbles.count[nib];
  }
  return k;
}

#if defined(__SSE2__)
// Bit j set where entry j of one 16-byte vector is non-zero (4 floats or 2 doubles; NaN counts).
inline unsigned nonzero_mask(const float* p) {
  return static_cast<unsigned>(_mm_movemask_ps(_mm_cmpneq_ps(_mm_loadu_ps(p), _mm_setzero_ps())));
}
inline unsigned nonzero_mask(const double* p) {
  return static_cast<unsigned>(_mm_movemask_pd(_mm_cmpneq_pd(_mm_loadu_pd(p), _mm_setzero_pd())));
}
#endif

// The same for 0/1 bytes (bool spikes): 16 entries per compare.
inline std::int64_t nonzero_rows(const std::uint8_t* x, std::int64_t n, std::int64_t* rows) {
  std::int64_t k = 0, i = 0;
#if defined(__SSE2__)
  for (; i + 16 <= n; i += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i));
    const unsigned m = ~static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_setzero_si128()))) & 0xFFFFu;
    if (m) k = append_bits<4>(m, i, rows, k);
  }
#endif
  for (; i < n; ++i)
    if (x[i]) rows[k++] = i;
  return k;
}

template <class Real>
std::int64_t nonzero_rows(const Real* x, std::int64_t n, std::int64_t* rows) {
  std::int64_t k = 0, i = 0;
#if defined(__SSE2__)
  constexpr std::int64_t L = 16 / sizeof(Real);  // entries per vector; four vectors per mask
  for (; i + 4 * L <= n; i += 4 * L) {
    const unsigned m = nonzero_mask(x + i) | nonzero_mask(x + i + L) << L | nonzero_mask(x + i + 2 * L) << (2 * L) |
                       nonzero_mask(x + i + 3 * L) << (3 * L);
    if (m) k = append_bits<L>(m, i, rows, k);  // 4 L entries: L groups of 4 (spike rows: mostly none)
  }
#endif
  for (; i < n; ++i)
    if (x[i] != Real(0)) rows[k++] = i;
  return k;
}

// dst[i] += W[rows[0], i] (x[rows[0]]) + W[rows[1], i] (x[rows[1]]) + ..., the rows added one after
// the other (add_scaled's rounding, row by row) but four rows per pass over dst, so that dst is loaded
// and stored once per four rows. x == nullptr: every row with weight 1. Rows of W are n long.
template <class Real>
AHPSIM_CLONES void add_rows4(Real* AHPSIM_RESTRICT dst, const Real* AHPSIM_RESTRICT w0, const Real* AHPSIM_RESTRICT w1,
                             const Real* AHPSIM_RESTRICT w2, const Real* AHPSIM_RESTRICT w3, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) dst[i] = (((dst[i] + w0[i]) + w1[i]) + w2[i]) + w3[i];
}

template <class Real>
void add_rows(Real* dst, const Real* W, const Real* x, const std::int64_t* rows, std::int64_t k, std::int64_t n) {
  std::int64_t m = 0;
  if (!x) {
    for (; m + 4 <= k; m += 4)
      add_rows4(dst, W + rows[m] * n, W + rows[m + 1] * n, W + rows[m + 2] * n, W + rows[m + 3] * n, n);
    for (; m < k; ++m) add_scaled(dst, W + rows[m] * n, Real(1), n);
  } else {
    for (; m < k; ++m) add_scaled(dst, W + rows[m] * n, x[rows[m]], n);
  }
}

// Indices j - j0 of the set bits j in [j0, j0 + n) of a spike bit row, ascending; returns their count.
inline std::int64_t set_bits(const std::uint64_t* words, std::int64_t j0, std::int64_t n, std::int64_t* rows) {
  std::int64_t k = 0;
  if (n <= 0) return 0;
  const std::int64_t j1 = j0 + n;
  for (std::int64_t w = j0 / 64; w <= (j1 - 1) / 64; ++w) {
    std::uint64_t m = words[w];
    if (!m) continue;
    const std::int64_t lo = std::max<std::int64_t>(j0 - 64 * w, 0), hi = std::min<std::int64_t>(j1 - 64 * w, 64);
    if (lo) m &= ~std::uint64_t(0) << lo;
    if (hi < 64) m &= (std::uint64_t(1) << hi) - 1;
    while (m) {
      rows[k++] = 64 * w + __builtin_ctzll(m) - j0;
      m &= m - 1;
    }
  }
  return k;
}

// One step of all N neurons of one trial, in the float engine's order (models.hpp):
//   I = (slot + E) + bias;  c = rho_c c + beta_c z';  a = rho_a a + z';  A = v_th + beta_a a
//   v = ((alpha v + I) - c) - v_th z'      or (reset to zero)  ((alpha v) (1 - z') + I) - c
//   r = z' ? n_ref : max(r - 1, 0);  z = (v > A) & (r == 0);  v = 0 where r > 0 (Ref == kRefClamp)
// Branch-free over neurons (vectorizable); the slot is cleared for its next use.
constexpr int kRefNone = 0, kRefBlock = 1, kRefClamp = 2;  // no refractoriness, spikes blocked, v clamped too

template <bool Zero, bool Alif, int Ref, class Real>
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
    if constexpr (Ref != kRefNone) {
      const std::int32_t dec = r[i] > 0 ? r[i] - 1 : 0;
      const std::int32_t rr = zpf != Real(0) ? n_ref : dec;
      r[i] = rr;
      free_out[i] = static_cast<std::uint8_t>(rr == 0);
      spike = spike && rr == 0;
      if constexpr (Ref == kRefClamp) vn = rr == 0 ? vn : Real(0);
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
UpdateFn<Real> pick_update(bool zero, bool alif, int ref) {
  auto by_ref = [&](auto zero_c, auto alif_c) -> UpdateFn<Real> {
    constexpr bool Z = decltype(zero_c)::value, A = decltype(alif_c)::value;
    if (ref == kRefClamp) return &update<Z, A, kRefClamp, Real>;
    return ref == kRefBlock ? &update<Z, A, kRefBlock, Real> : &update<Z, A, kRefNone, Real>;
  };
  if (zero) return alif ? by_ref(std::true_type{}, std::true_type{}) : by_ref(std::true_type{}, std::false_type{});
  return alif ? by_ref(std::false_type{}, std::true_type{}) : by_ref(std::false_type{}, std::false_type{});
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

// Requests the cache lines of p[0, n) ahead of their use.
template <class T>
inline void prefetch_span(const T* p, std::int64_t n) {
  const char* c = reinterpret_cast<const char*>(p);
  const std::int64_t bytes = n * static_cast<std::int64_t>(sizeof(T));
  for (std::int64_t off = 0; off < bytes; off += 64) __builtin_prefetch(c + off);
}

// Batch-major input ([B, T, n_in], torch's batch-first layout) is read one row per trial and step:
// as many interleaved streams as trials, more than the hardware prefetcher follows, so the rows of a
// few steps ahead are requested in software.
constexpr std::int64_t kInputPrefetchSteps = 4;

// Rows (t, b) of a projection's presynaptic activity (P sources), as delayed_outer and the backward
// pass's fused weight gradients read them.
template <class Real>
struct ActivityRows {
  Activity<Real> act;
  std::int64_t T = 0, B = 0, P = 0;

  std::int64_t offset(std::int64_t t, std::int64_t b) const { return (act.batch_major ? b * T + t : t * B + b) * P; }

  // The non-zero sources j in [j0, j0 + n) of row (t, b), as j - j0 into `active` (room for n + 3),
  // ascending; returns their count. `walk` (+1 or -1): the direction the caller steps through t, whose
  // batch-major rows kInputPrefetchSteps ahead are requested.
  std::int64_t active(std::int64_t t, std::int64_t b, std::int64_t j0, std::int64_t n, std::int64_t* active,
                      std::int64_t walk) const {
    if (act.bits) return set_bits(act.bits + (t * B + b) * spike_words(P), j0, n, active);
    const std::int64_t o = offset(t, b) + j0;
    const std::int64_t ta = t + walk * kInputPrefetchSteps;
    if (act.batch_major && ta >= 0 && ta < T) {  // one stream per trial: see kInputPrefetchSteps
      const std::int64_t ahead = o + walk * kInputPrefetchSteps * P;
      act.s ? prefetch_span(act.s + ahead, n) : prefetch_span(act.events + ahead, n);
    }
    return act.s ? nonzero_rows(act.s + o, n, active) : nonzero_rows(act.events + o, n, active);
  }

  // The value of source j in row (t, b) (1 for events and bits).
  Real value(std::int64_t t, std::int64_t b, std::int64_t j) const { return act.s ? act.s[offset(t, b) + j] : Real(1); }
};

// The state of one trial in the forward pass, advanced one step at a time (a thread advances a block
// of trials step by step, so that the [T, B, N] outputs are written in memory order).
template <class Real>
struct ForwardTrial {
  const Layer<Real>* L;
  const LayerOutputs<Real>* out;
  std::int64_t b;
  std::vector<Real> ring, v, c, a, zp, ring_out, y;
  std::vector<std::int32_t> r;

  ForwardTrial(const Layer<Real>& layer, const LayerOutputs<Real>& outputs, std::int64_t trial)
      : L(&layer), out(&outputs), b(trial) {
    const std::size_t N = static_cast<std::size_t>(layer.N);
    const std::size_t S = static_cast<std::size_t>(layer.max_delay) + 1;
    ring.assign(S * N, Real(0));
    v.assign(N, Real(0));
    c.assign(N, Real(0));
    a.assign(N, Real(0));
    zp.assign(N, Real(0));
    r.assign(N, 0);
    const std::size_t K = static_cast<std::size_t>(layer.n_out);
    ring_out.assign((static_cast<std::size_t>(layer.d_out) + 1) * K, Real(0));
    y.assign(K, Real(0));
  }

  // Step t. Scratch rows (inference: outputs not kept) and the spike index buffer are the thread's.
  void step(std::int64_t t, UpdateFn<Real> update, const Real* zeros, Real* scratch_v, Real* scratch_A,
            std::uint8_t* scratch_free, std::int64_t* spike_buf, const Real* w_out_t) {
    const Layer<Real>& l = *L;
    const std::int64_t B = l.B, N = l.N;
    const std::int64_t S = static_cast<std::int64_t>(l.max_delay) + 1;
    auto slot = [&](std::int64_t d) { return ring.data() + ((t + d) % S) * N; };  // integrated d steps from now
    const std::int64_t row = t * B + b;
    // input events of this step, channels ascending
    if (l.x || l.x_events) {
      const std::int64_t xo = (l.x_batch_major ? b * l.T + t : row) * l.n_in;
      const Real* x = l.x ? l.x + xo : nullptr;  // null: 0/1 events of weight 1
      if (l.x_batch_major && t + kInputPrefetchSteps < l.T) {  // (see kInputPrefetchSteps)
        const std::int64_t ahead = xo + kInputPrefetchSteps * l.n_in;
        x ? prefetch_span(l.x + ahead, l.n_in) : prefetch_span(l.x_events + ahead, l.n_in);
      }
      const std::int64_t n_events =
          x ? nonzero_rows(x, l.n_in, spike_buf) : nonzero_rows(l.x_events + xo, l.n_in, spike_buf);
      if (!l.d_in) {
        add_rows(slot(l.d_in_uniform), l.w_in, x, spike_buf, n_events, N);
      } else {
        for (std::int64_t e = 0; e < n_events; ++e) {
          const std::int64_t ch = spike_buf[e];
          const Real xv = x ? x[ch] : Real(1);
          const Real* w = l.w_in + ch * N;
          const std::int32_t* d = l.d_in + ch * N;
          if (xv == Real(1)) {
            for (std::int64_t i = 0; i < N; ++i) slot(d[i])[i] += w[i];
          } else {
            for (std::int64_t i = 0; i < N; ++i) slot(d[i])[i] += w[i] * xv;
          }
        }
      }
    }
    const std::int64_t o = row * N;
    const Real* bias = l.bias ? l.bias : zeros;
    update(N, slot(0), l.E ? l.E + o : zeros, bias, v.data(), c.data(), a.data(), r.data(), zp.data(), l.alpha,
           l.v_th, l.rho_c, l.beta_c, l.rho_a, l.beta_a, l.n_ref, out->z + o, out->v ? out->v + o : scratch_v,
           out->A ? out->A + o : scratch_A, out->free ? out->free + o : scratch_free);
    // this step's spikes into the ring, sources ascending
    const std::int64_t n_spikes = nonzero_rows(zp.data(), N, spike_buf);
    if (out->z_bits) {
      const std::int64_t W = spike_words(N);
      std::uint64_t* bits = out->z_bits + row * W;
      std::int64_t s_ = 0;  // each word built in a register and stored once (spike_buf is ascending)
      for (std::int64_t k = 0; k < W; ++k) {
        std::uint64_t m = 0;
        for (; s_ < n_spikes && spike_buf[s_] < 64 * (k + 1); ++s_) m |= std::uint64_t(1) << (spike_buf[s_] % 64);
        bits[k] = m;
      }
    }
    if (!l.d_rec) {
      add_rows(slot(l.d_rec_uniform), l.w_rec, static_cast<const Real*>(nullptr), spike_buf, n_spikes, N);
    } else {
      for (std::int64_t s_ = 0; s_ < n_spikes; ++s_) {
        const std::int64_t j = spike_buf[s_];
        const Real* w = l.w_rec + j * N;
        const std::int32_t* d = l.d_rec + j * N;
        for (std::int64_t i = 0; i < N; ++i) slot(d[i])[i] += w[i];
      }
    }
    const std::int64_t K = l.n_out;
    if (K) {  // readout: this step's spikes into its ring, then y[t] = kappa y + (slot + b_out)
      const std::int64_t SO = static_cast<std::int64_t>(l.d_out) + 1;
      Real* so = ring_out.data() + ((t + l.d_out) % SO) * K;
      for (std::int64_t s_ = 0; s_ < n_spikes; ++s_)
        for (std::int64_t k = 0; k < K; ++k) so[k] += w_out_t[spike_buf[s_] * K + k];
      Real* cur = ring_out.data() + (t % SO) * K;
      Real* yo = out->y + row * K;
      for (std::int64_t k = 0; k < K; ++k) {
        const Real I = l.b_out ? cur[k] + l.b_out[k] : cur[k];
        y[k] = l.kappa[k] * y[k] + I;
        cur[k] = Real(0);
        yo[k] = y[k];
      }
    }
  }
};

// ---- backward ------------------------------------------------------------------------------------

// psi(x), the surrogate pseudo-derivative at the normalised voltage x = (v - A) / A (parameters by
// value, so that the loops calling it keep them in registers and vectorize).
template <SurrogateKind K, class Real>
inline Real pseudo_derivative(Real damp, Real slope, Real sigma, Real x) {
  if constexpr (K == SurrogateKind::Triangle) {
    (void)slope;
    (void)sigma;
    return damp * std::max(Real(0), Real(1) - std::abs(x));
  } else if constexpr (K == SurrogateKind::FastSigmoid) {
    (void)sigma;
    const Real d = Real(1) + slope * std::abs(x);
    return damp / (d * d);
  } else {
    (void)slope;
    const Real u = x / sigma;
    return damp * std::exp(Real(-0.5) * u * u);
  }
}

// One step of the adjoint recursion for all N neurons of one trial, branch-free (vectorizable):
//   gz = slot + G;  q = gz dz/dv;  gv = q + m gv',  m = alpha (subtract) or alpha (1 - z) (zero)
//   gc = rho_c gc' - gv;  ga = rho_a ga' + beta_a gz dz/dA
//   prev += -reset_factor * (v_th gv | alpha v[t-1] gv) + beta_c gc + ga
//   (Ref == kRefClamp: gv = 0 where the neuron was refractory, its v clamped at 0)
//   r = gv - a0 gv' (what the shared-decay recurrence h[t] = W^T r[t] + a0 h[t+1] needs)
// slot: dL/dz[t] from the future (cleared); G: from outside the layer; v, A (or v_th), fr, z: step t
// of the forward pass; vp: v[t-1]; prev: dL/dz[t-1] (a scratch row at t = 0); gI: out, dL/dI[t].
// LIF neurons (beta_c = beta_a = 0) get exact zeros from the AHP and ALIF terms; layers without AHP
// (ALIF) neurons skip those terms (Ahp, Alif). inv_A: 1 / v_th per neuron (fixed thresholds; then A is
// v_th); with Alif, 1 / A[t] is computed here.
template <SurrogateKind K, bool Zero, int Ref, bool Ahp, bool Alif, class Real>
AHPSIM_CLONES void backward_step(std::int64_t n, Real damp, Real slope, Real sigma, Real* AHPSIM_RESTRICT slot,
                                 const Real* AHPSIM_RESTRICT G, const Real* AHPSIM_RESTRICT v,
                                 const Real* AHPSIM_RESTRICT A, const Real* AHPSIM_RESTRICT inv_A,
                                 const std::uint8_t* AHPSIM_RESTRICT fr,
                                 const Real* AHPSIM_RESTRICT z, const Real* AHPSIM_RESTRICT vp,
                                 Real* AHPSIM_RESTRICT prev, Real* AHPSIM_RESTRICT gI,
                                 const Real* AHPSIM_RESTRICT alpha, const Real* AHPSIM_RESTRICT vth,
                                 const Real* AHPSIM_RESTRICT rho_c, const Real* AHPSIM_RESTRICT beta_c,
                                 const Real* AHPSIM_RESTRICT rho_a, const Real* AHPSIM_RESTRICT beta_a, Real a0,
                                 Real reset_factor, Real* AHPSIM_RESTRICT gv, Real* AHPSIM_RESTRICT gc,
                                 Real* AHPSIM_RESTRICT ga, Real* AHPSIM_RESTRICT r) {
  for (std::int64_t i = 0; i < n; ++i) {
    const Real gz = slot[i] + G[i];
    slot[i] = Real(0);
    const Real inv = Alif ? Real(1) / A[i] : inv_A[i];
    Real psi = pseudo_derivative<K>(damp, slope, sigma, (v[i] - A[i]) * inv);
    if constexpr (Ref != kRefNone) psi *= static_cast<Real>(fr[i]);
    const Real dzdv = psi * inv;
    const Real q = gz * dzdv;
    const Real m = Zero ? alpha[i] * (Real(1) - z[i]) : alpha[i];
    const Real g_next = gv[i];
    Real g = q + m * g_next;
    if constexpr (Ref == kRefClamp) g *= static_cast<Real>(fr[i]);
    r[i] = g - a0 * g_next;
    gv[i] = g;
    gI[i] = g;
    Real own = Real(0);  // what the neuron sends to dL/dz[t-1] through c and a
    if constexpr (Ahp) {
      const Real c = rho_c[i] * gc[i] - g;
      gc[i] = c;
      own = beta_c[i] * c;
    }
    if constexpr (Alif) {
      const Real dzdA = -dzdv * v[i] * inv;
      const Real ad = rho_a[i] * ga[i] + beta_a[i] * (gz * dzdA);
      ga[i] = ad;
      own = own + ad;
    }
    const Real reset = Zero ? (alpha[i] * vp[i]) * g : vth[i] * g;
    prev[i] += own - reset_factor * reset;
  }
}

template <class Real>
using BackwardStepFn = void (*)(std::int64_t, Real, Real, Real, Real*, const Real*, const Real*, const Real*,
                                const Real*, const std::uint8_t*, const Real*, const Real*, Real*, Real*, const Real*, const Real*,
                                const Real*, const Real*, const Real*, const Real*, Real, Real, Real*, Real*, Real*,
                                Real*);

template <SurrogateKind K, bool Ahp, bool Alif, class Real>
BackwardStepFn<Real> pick_backward_step_ka(bool zero, int ref) {
  auto by_ref = [&](auto zero_c) -> BackwardStepFn<Real> {
    constexpr bool Z = decltype(zero_c)::value;
    if (ref == kRefClamp) return &backward_step<K, Z, kRefClamp, Ahp, Alif, Real>;
    return ref == kRefBlock ? &backward_step<K, Z, kRefBlock, Ahp, Alif, Real>
                            : &backward_step<K, Z, kRefNone, Ahp, Alif, Real>;
  };
  return zero ? by_ref(std::true_type{}) : by_ref(std::false_type{});
}

template <SurrogateKind K, class Real>
BackwardStepFn<Real> pick_backward_step_k(bool zero, int ref, bool ahp, bool alif) {
  if (ahp)
    return alif ? pick_backward_step_ka<K, true, true, Real>(zero, ref) : pick_backward_step_ka<K, true, false, Real>(zero, ref);
  return alif ? pick_backward_step_ka<K, false, true, Real>(zero, ref) : pick_backward_step_ka<K, false, false, Real>(zero, ref);
}

template <class Real>
BackwardStepFn<Real> pick_backward_step(SurrogateKind k, bool zero, int ref, bool ahp, bool alif) {
  switch (k) {
    case SurrogateKind::Triangle: return pick_backward_step_k<SurrogateKind::Triangle, Real>(zero, ref, ahp, alif);
    case SurrogateKind::FastSigmoid:
      return pick_backward_step_k<SurrogateKind::FastSigmoid, Real>(zero, ref, ahp, alif);
    default: return pick_backward_step_k<SurrogateKind::Gaussian, Real>(zero, ref, ahp, alif);
  }
}

// h[j] += w[j] * x
template <class Real>
AHPSIM_CLONES void axpy(Real* AHPSIM_RESTRICT h, const Real* AHPSIM_RESTRICT w, Real x, std::int64_t n) {
  for (std::int64_t j = 0; j < n; ++j) h[j] += w[j] * x;
}

// h[j] += ((w0[j] x0 + w1[j] x1) + (w2[j] x2 + w3[j] x3)): four rows per pass over h
template <class Real>
AHPSIM_CLONES void axpy4(Real* AHPSIM_RESTRICT h, const Real* AHPSIM_RESTRICT w0, const Real* AHPSIM_RESTRICT w1,
                         const Real* AHPSIM_RESTRICT w2, const Real* AHPSIM_RESTRICT w3, Real x0, Real x1, Real x2,
                         Real x3, std::int64_t n) {
  for (std::int64_t j = 0; j < n; ++j) h[j] += (w0[j] * x0 + w1[j] * x1) + (w2[j] * x2 + w3[j] * x3);
}

// h += sum over the listed rows i of W[i, :] x[i] (rows of W are n long), four rows at a time
template <class Real>
void gather_axpy(Real* h, const Real* W, const Real* x, const std::int64_t* rows, std::int64_t k, std::int64_t n) {
  std::int64_t m = 0;
  for (; m + 4 <= k; m += 4) {
    const std::int64_t a = rows[m], b = rows[m + 1], c = rows[m + 2], d = rows[m + 3];
    axpy4(h, W + a * n, W + b * n, W + c * n, W + d * n, x[a], x[b], x[c], x[d], n);
  }
  for (; m < k; ++m) axpy(h, W + rows[m] * n, x[rows[m]], n);
}

// dst[j] += h[j]
template <class Real>
AHPSIM_CLONES void add_to(Real* AHPSIM_RESTRICT dst, const Real* AHPSIM_RESTRICT h, std::int64_t n) {
  for (std::int64_t j = 0; j < n; ++j) dst[j] += h[j];
}

// dst[j] += h[j]; h[j] *= a (the shared-decay accumulator delivered, then carried one step back)
template <class Real>
AHPSIM_CLONES void deliver_and_decay(Real* AHPSIM_RESTRICT dst, Real* AHPSIM_RESTRICT h, Real a, std::int64_t n) {
  for (std::int64_t j = 0; j < n; ++j) {
    dst[j] += h[j];
    h[j] *= a;
  }
}

// Work space of the backward pass that the trials of one thread share (used within one step).
template <class Real>
struct BackwardScratch {
  std::vector<Real> r, zeros, scratch, ext, inv_vth;  // [N]
  std::vector<std::int64_t> rows, out_rows, pre_rows;  // pre_rows: the fused weight gradients' sources
  ActivityRows<Real> spikes, input;                    // the fused weight gradients' presynaptic activity
};

// The adjoint state of one trial, walked back in time one step at a time.
template <class Real>
struct BackwardTrial {
  std::int64_t b = 0;
  std::vector<Real> ring;    // [S, N] dL/dz of the next S steps back (filled from the future)
  std::vector<Real> h;       // [S, N] W_d^T dL/dI per delay d (shared-decay path)
  std::vector<Real> gv, gc, ga, z_row, zp_row;  // [N]
  std::vector<Real> c_hist, a_hist;             // [T, N] (trainable decays only)
  // spike rows spelled out from bits alternate between z_row and zp_row: the decay gradients' z[t - 1]
  // is the next step's z[t] (not spelled out twice)
  int z_cur = 0;
  const Real* z_known = nullptr;
  Real* g_w_rec = nullptr;  // this trial's group's weight-gradient arrays (LayerGrad::g_w_rec, g_w_in), or null
  Real* g_w_in = nullptr;
};

// Trials a thread walks back in time together, step by step: their rows of the [T, B, N] arrays are
// then read and written in memory order (one trial alone jumps B * N entries per step, which defeats
// the hardware prefetcher), while their adjoint states (about 9 N numbers each) stay in cache. With
// trainable decays each trial also keeps c and a of all steps, so fewer go together.
constexpr std::int64_t kTrialChunk = 16, kTrialChunkDecays = 4;

// Row (t, b) of the forward pass's spikes: z itself, or its bits (LayerGrad::z_bits) spelled out into buf.
template <class Real>
const Real* spike_row(const LayerGrad<Real>& in, std::int64_t t, std::int64_t b, std::int64_t B, std::int64_t N,
                      Real* buf) {
  if (!in.z_bits) return in.z + (t * B + b) * N;
  std::fill(buf, buf + N, Real(0));
  const std::int64_t W = spike_words(N);
  const std::uint64_t* words = in.z_bits + (t * B + b) * W;
  for (std::int64_t k = 0; k < W; ++k)
    for (std::uint64_t m = words[k]; m; m &= m - 1) buf[64 * k + __builtin_ctzll(m)] = Real(1);
  return buf;
}

// Trial b's state before its last step: zeros, c[t] and a[t] recomputed from its spikes (trainable
// decays), and the readout's whole backward recursion (it does not depend on the layer's).
template <class Real>
void backward_begin(const Layer<Real>& L, const LayerGrad<Real>& in, std::int64_t b, BackwardTrial<Real>& w,
                    const BackwardScratch<Real>& sc) {
  const std::int64_t T = L.T, B = L.B, N = L.N;
  w.b = b;
  w.z_cur = 0;
  w.z_known = nullptr;
  for (auto* vec : {&w.ring, &w.h, &w.gv, &w.gc, &w.ga}) std::fill(vec->begin(), vec->end(), Real(0));
  if (in.g_alpha) {  // c[t] and a[t] of this trial, recomputed from its spikes as the forward pass did
    Real* ch = w.c_hist.data();
    Real* ah = w.a_hist.data();
    for (std::int64_t t = 0; t < T; ++t) {
      const Real* zp = t > 0 ? spike_row(in, t - 1, b, B, N, w.zp_row.data()) : sc.zeros.data();
      for (std::int64_t i = 0; i < N; ++i) {
        ch[t * N + i] = L.rho_c[i] * (t > 0 ? ch[(t - 1) * N + i] : Real(0)) + L.beta_c[i] * zp[i];
        ah[t * N + i] = L.rho_a[i] * (t > 0 ? ah[(t - 1) * N + i] : Real(0)) + zp[i];
      }
    }
  }
  const std::int64_t K = L.n_out;
  if (K) {  // readout: dL/du[t] = Gy[t] + kappa dL/du[t+1] (u: the readout's input), all steps first
    std::vector<Real> acc(static_cast<std::size_t>(K), Real(0));
    for (std::int64_t t = T - 1; t >= 0; --t) {
      Real* gu = in.gU + (t * B + b) * K;
      const Real* gy = in.Gy ? in.Gy + (in.Gy_batch_major ? b * T + t : t * B + b) * K : nullptr;
      for (std::int64_t k = 0; k < K; ++k) {
        acc[k] = gy ? gy[k] + L.kappa[k] * acc[k] : L.kappa[k] * acc[k];
        gu[k] = acc[k];
      }
    }
  }
}

// Step t of trial w.b's backward recursion (steps are taken from T - 1 down to 0).
template <class Real>
void backward_trial_step(const Layer<Real>& L, const LayerGrad<Real>& in, Real* gI, std::int64_t t, std::int64_t S,
                         const std::vector<std::int32_t>& used_delays, bool shared_decay, BackwardStepFn<Real> step,
                         BackwardTrial<Real>& w, BackwardScratch<Real>& sc) {
  const std::int64_t T = L.T, B = L.B, N = L.N, b = w.b;
  const Real a0 = L.alpha[0];
  const Real reset_factor = in.detach_reset ? Real(0) : Real(1);
  Real* ring = w.ring.data();
  Real* gv = w.gv.data();
  Real* r = sc.r.data();
  std::int64_t* rows = sc.rows.data();
  const std::int64_t K = L.n_out;
  const std::int64_t o = (t * B + b) * N;
  // dL/dz[t] from outside the recurrence: G, the rate term and the readout's W_out^T dL/du[t + d_out]
  const Real* G = in.G ? in.G + o : sc.zeros.data();
  if (K || in.G_rate) {
    Real* e = sc.ext.data();
    std::copy(G, G + N, e);
    if (in.G_rate) add_to(e, in.G_rate, N);
    if (K && t + L.d_out < T) {
      const Real* gu = in.gU + ((t + L.d_out) * B + b) * K;
      gather_axpy(e, L.w_out, gu, sc.out_rows.data(), nonzero_rows(gu, K, sc.out_rows.data()), N);
    }
    G = e;
  }
  if (t >= 1) {  // this trial's rows of the next step back, requested while this one is computed
    const std::int64_t po = o - B * N;
    prefetch_span(in.v + po, N);
    if ((L.reset_zero || in.g_alpha) && !in.z_bits) prefetch_span(in.z + po, N);  // (read only then)
    prefetch_span(gI + po, N);
    if (in.G) prefetch_span(in.G + po, N);
    if (L.has_alif) prefetch_span(in.A + po, N);
    if (in.free) prefetch_span(in.free + po, N);
  }
  Real* z_bufs[2] = {w.z_row.data(), w.zp_row.data()};
  const Surrogate<Real>& su = in.surrogate;
  // z[t] enters the step only with reset to zero (the leak term's factor 1 - z)
  const Real* zt = !L.reset_zero ? (in.z_bits ? sc.zeros.data() : in.z + o)
                   : w.z_known ? w.z_known : spike_row(in, t, b, B, N, z_bufs[w.z_cur]);
  w.z_known = nullptr;
  step(N, su.dampening, su.slope, su.sigma, ring + (t % S) * N, G, in.v + o,
       L.has_alif ? in.A + o : L.v_th, sc.inv_vth.data(), in.free ? in.free + o : nullptr, zt,
       t > 0 ? in.v + o - B * N : sc.zeros.data(), t > 0 ? ring + ((t - 1) % S) * N : sc.scratch.data(), gI + o,
       L.alpha, L.v_th, L.rho_c, L.beta_c, L.rho_a, L.beta_a, a0, reset_factor, gv, w.gc.data(), w.ga.data(), r);
  if (w.g_w_rec || w.g_w_in) {  // the weight gradients' terms of gI[t] (the row is still in cache)
    const Real* g = gI + o;
    std::int64_t* pre = sc.pre_rows.data();
    // the sources active at t - d, each adding gI[t] to its row (walking back in time)
    auto add_terms = [&](const ActivityRows<Real>& src, std::int64_t d, Real* out) {
      if (!out || t - d < 0) return;
      const std::int64_t k = src.active(t - d, b, 0, src.P, pre, -1);
      for (std::int64_t n = 0; n < k; ++n) add_scaled(out + pre[n] * N, g, src.value(t - d, b, pre[n]), N);
    };
    add_terms(sc.spikes, L.d_rec_uniform, w.g_w_rec);
    add_terms(sc.input, L.d_in_uniform, w.g_w_in);
  }
  if (t == 0) return;
  if (in.g_alpha) {  // dv[t]/dalpha = v[t-1] (1 - z[t-1] with reset to zero); dc[t]/drho_c = c[t-1]; ...
    const Real* vp = in.v + o - B * N;
    const Real* zp = L.reset_zero ? spike_row(in, t - 1, b, B, N, z_bufs[w.z_cur ^ 1]) : sc.zeros.data();
    if (L.reset_zero) {  // z[t - 1] is the next step's z[t]
      w.z_known = zp;
      w.z_cur ^= 1;
    }
    const Real* cp = w.c_hist.data() + (t - 1) * N;
    const Real* ap = w.a_hist.data() + (t - 1) * N;
    Real* ga_ = in.g_alpha + b * N;
    Real* gc_ = in.g_rho_c + b * N;
    Real* gr_ = in.g_rho_a + b * N;
    for (std::int64_t i = 0; i < N; ++i) {
      ga_[i] += gv[i] * (L.reset_zero ? (Real(1) - zp[i]) * vp[i] : vp[i]);
      if (L.has_ahp) gc_[i] += w.gc[i] * cp[i];
      if (L.has_alif) gr_[i] += w.ga[i] * ap[i];
    }
  }
  // through the recurrent synapses: dL/dz[t - d] += W_d^T dL/dI[t], computed from the rows where r
  // (shared decay) or dL/dI (per-neuron decays) is non-zero
  if (shared_decay) {
    const std::int64_t k = nonzero_rows(r, N, rows);
    if (!in.d_post) {
      gather_axpy(w.h.data() + L.d_rec_uniform * N, in.w_post, r, rows, k, N);
    } else {
      for (std::int64_t n = 0; n < k; ++n) {
        const std::int64_t i = rows[n];
        const Real* row = in.w_post + i * N;
        const std::int32_t* dd = in.d_post + i * N;
        const Real ri = r[i];
        for (std::int64_t j = 0; j < N; ++j) w.h[dd[j] * N + j] += row[j] * ri;
      }
    }
    for (const std::int32_t d : used_delays) {
      Real* h = w.h.data() + d * N;
      if (t - d >= 0) {
        deliver_and_decay(ring + ((t - d) % S) * N, h, a0, N);
      } else {
        std::fill(h, h + N, Real(0));  // nothing earlier than step 0 receives it
      }
    }
  } else {
    const std::int64_t k = nonzero_rows(gv, N, rows);
    if (!in.d_post) {
      if (t - L.d_rec_uniform >= 0) gather_axpy(ring + ((t - L.d_rec_uniform) % S) * N, in.w_post, gv, rows, k, N);
    } else {
      for (std::int64_t n = 0; n < k; ++n) {
        const std::int64_t i = rows[n];
        const Real* row = in.w_post + i * N;
        const std::int32_t* dd = in.d_post + i * N;
        const Real gi = gv[i];
        for (std::int64_t j = 0; j < N; ++j)
          if (t - dd[j] >= 0) ring[((t - dd[j]) % S) * N + j] += row[j] * gi;
      }
    }
  }
}

template <class Real>
int ref_mode(const Layer<Real>& L, bool refractory) {
  return !refractory ? kRefNone : L.refractory_clamp ? kRefClamp : kRefBlock;
}

}  // namespace

template <class Real>
void backward(const Layer<Real>& L, const LayerGrad<Real>& in, Real* gI, unsigned n_threads) {
  if (L.T <= 0 || L.B <= 0 || L.N <= 0) return;
  const std::int64_t N = L.N;
  // the recurrent delays in use (the ring and the per-delay accumulators cover 1..max_d)
  std::vector<std::int32_t> used;
  if (!in.d_post) {
    used.push_back(L.d_rec_uniform);
  } else {
    std::vector<bool> seen;
    for (std::int64_t k = 0; k < N * N; ++k) {
      const auto d = static_cast<std::size_t>(in.d_post[k]);
      if (d >= seen.size()) seen.resize(d + 1, false);
      seen[d] = true;
    }
    for (std::size_t d = 1; d < seen.size(); ++d)
      if (seen[d]) used.push_back(static_cast<std::int32_t>(d));
  }
  const std::int32_t max_d = used.empty() ? 1 : *std::max_element(used.begin(), used.end());
  bool shared_decay = true;
  for (std::int64_t i = 1; i < N; ++i) shared_decay = shared_decay && L.alpha[i] == L.alpha[0];
  const std::int64_t S = static_cast<std::int64_t>(max_d) + 1;
  const BackwardStepFn<Real> step =
      pick_backward_step<Real>(in.surrogate.kind, L.reset_zero, ref_mode(L, in.free != nullptr), L.has_ahp, L.has_alif);
  const std::int64_t chunk = in.g_alpha ? kTrialChunkDecays : kTrialChunk;
  // fused weight gradients: one array per group of trials; threads take whole groups (see LayerGrad)
  const bool fused = in.g_w_rec || in.g_w_in;
  const std::int64_t unit = fused ? kWeightGradGroup : 1, n_units = (L.B + unit - 1) / unit;
  const unsigned team = static_cast<unsigned>(std::max<std::int64_t>(1, std::min<std::int64_t>(n_threads, n_units)));
  const std::int64_t rec_size = in.g_w_rec ? N * N : 0, in_size = in.g_w_in ? L.n_in * N : 0;
  std::vector<Real> group_rec(static_cast<std::size_t>(n_units * rec_size), Real(0));
  std::vector<Real> group_in(static_cast<std::size_t>(n_units * in_size), Real(0));
  parallel(team, [&](unsigned th) {
    BackwardScratch<Real> sc;
    for (auto* vec : {&sc.r, &sc.zeros, &sc.scratch, &sc.ext}) vec->assign(static_cast<std::size_t>(N), Real(0));
    sc.inv_vth.resize(static_cast<std::size_t>(N));
    for (std::int64_t i = 0; i < N; ++i) sc.inv_vth[i] = Real(1) / L.v_th[i];
    sc.rows.assign(static_cast<std::size_t>(N + 3), 0);  // nonzero_rows writes up to 3 past the count
    sc.out_rows.assign(static_cast<std::size_t>(L.n_out + 3), 0);
    sc.pre_rows.assign(static_cast<std::size_t>(std::max<std::int64_t>(N, L.n_in) + 3), 0);
    sc.spikes = {{in.z_bits ? nullptr : in.z, nullptr, in.z_bits, false}, L.T, L.B, N};
    sc.input = {{L.x, L.x_events, nullptr, L.x_batch_major}, L.T, L.B, L.n_in};
    // a contiguous block of trials (whole units) per thread, walked back in chunks of trials step by step
    const std::int64_t b0 = std::min(L.B, n_units * th / team * unit);
    const std::int64_t b1 = std::min(L.B, n_units * (th + 1) / team * unit);
    std::vector<BackwardTrial<Real>> trials(static_cast<std::size_t>(std::min(chunk, b1 - b0)));
    for (auto& w : trials) {
      w.ring.assign(static_cast<std::size_t>(S * N), Real(0));
      w.h.assign(static_cast<std::size_t>(shared_decay ? S * N : 0), Real(0));
      for (auto* vec : {&w.gv, &w.gc, &w.ga, &w.z_row, &w.zp_row}) vec->assign(static_cast<std::size_t>(N), Real(0));
      if (in.g_alpha) {
        w.c_hist.assign(static_cast<std::size_t>(L.T * N), Real(0));
        w.a_hist.assign(static_cast<std::size_t>(L.T * N), Real(0));
      }
    }
    for (std::int64_t c0 = b0; c0 < b1; c0 += chunk) {
      const std::int64_t n = std::min(chunk, b1 - c0);
      for (std::int64_t k = 0; k < n; ++k) {
        backward_begin(L, in, c0 + k, trials[k], sc);
        const std::int64_t g = (c0 + k) / unit;
        trials[k].g_w_rec = in.g_w_rec ? group_rec.data() + g * rec_size : nullptr;
        trials[k].g_w_in = in.g_w_in ? group_in.data() + g * in_size : nullptr;
      }
      for (std::int64_t t = L.T - 1; t >= 0; --t)
        for (std::int64_t k = 0; k < n; ++k)
          backward_trial_step(L, in, gI, t, S, used, shared_decay, step, trials[k], sc);
    }
  });
  // the groups' weight gradients added in group order (rows split over the threads)
  auto reduce = [&](Real* out, const std::vector<Real>& groups, std::int64_t size) {
    if (!out) return;
    parallel(team, [&](unsigned th) {
      const std::int64_t k0 = size * th / team, k1 = size * (th + 1) / team;
      for (std::int64_t k = k0; k < k1; ++k) {
        Real sum = groups[static_cast<std::size_t>(k)];
        for (std::int64_t g = 1; g < n_units; ++g) sum += groups[static_cast<std::size_t>(g * size + k)];
        out[k] += sum;
      }
    });
  };
  reduce(in.g_w_rec, group_rec, rec_size);
  reduce(in.g_w_in, group_in, in_size);
}

template <class Real>
void forward(const Layer<Real>& L, const LayerOutputs<Real>& out, unsigned n_threads) {
  if (L.T <= 0 || L.B <= 0 || L.N <= 0) return;
  const std::vector<Real> zeros(static_cast<std::size_t>(L.N), Real(0));
  const UpdateFn<Real> step = pick_update<Real>(L.reset_zero, L.has_alif, ref_mode(L, L.n_ref > 0));
  // the readout weights source-major, so that a spike adds one contiguous row [n_out]
  std::vector<Real> w_out_t(static_cast<std::size_t>(L.N * L.n_out));
  for (std::int64_t k = 0; k < L.n_out; ++k)
    for (std::int64_t j = 0; j < L.N; ++j) w_out_t[j * L.n_out + k] = L.w_out[k * L.N + j];
  const unsigned team = static_cast<unsigned>(std::max<std::int64_t>(1, std::min<std::int64_t>(n_threads, L.B)));
  parallel(team, [&](unsigned th) {
    // a contiguous block of trials per thread, advanced together step by step (memory-order writes)
    const std::int64_t b0 = L.B * th / team, b1 = L.B * (th + 1) / team;
    std::vector<ForwardTrial<Real>> trials;
    trials.reserve(static_cast<std::size_t>(b1 - b0));
    for (std::int64_t b = b0; b < b1; ++b) trials.emplace_back(L, out, b);
    const std::size_t N = static_cast<std::size_t>(L.N);
    std::vector<Real> scratch_v(N), scratch_A(N);
    std::vector<std::uint8_t> scratch_free(N);
    std::vector<std::int64_t> spike_buf(std::max<std::size_t>(N, static_cast<std::size_t>(L.n_in)) + 3);
    for (std::int64_t t = 0; t < L.T; ++t)
      for (auto& tr : trials)
        tr.step(t, step, zeros.data(), scratch_v.data(), scratch_A.data(), scratch_free.data(), spike_buf.data(),
                w_out_t.data());
  });
}

template <class Real>
void delayed_outer(std::int64_t T, std::int64_t B, std::int64_t P, std::int64_t N, const Activity<Real>& act,
                   const Real* g, const std::int32_t* d, std::int32_t d_uniform, Real* out, unsigned n_threads) {
  if (T <= 0 || B <= 0 || P <= 0 || N <= 0) return;
  const unsigned team = static_cast<unsigned>(std::max<std::int64_t>(1, std::min<std::int64_t>(n_threads, P)));
  const ActivityRows<Real> rows{act, T, B, P};
  parallel(team, [&](unsigned th) {
    const std::int64_t j0 = P * th / team, j1 = P * (th + 1) / team, nj = j1 - j0;
    std::vector<std::int64_t> active(static_cast<std::size_t>(nj + 3));
    if (d) {  // per-synapse delays: term by term
      for (std::int64_t t = 0; t < T; ++t)
        for (std::int64_t b = 0; b < B; ++b) {
          const std::int64_t n_active = rows.active(t, b, j0, nj, active.data(), 1);
          for (std::int64_t a = 0; a < n_active; ++a) {
            const std::int64_t j = j0 + active[a];
            const Real sv = rows.value(t, b, j);
            Real* dst = out + j * N;
            const std::int32_t* dj = d + j * N;
            for (std::int64_t i = 0; i < N; ++i) {
              const std::int64_t tt = t + dj[i];
              if (tt < T) dst[i] += g[(tt * B + b) * N + i] * sv;
            }
          }
        }
      return;
    }
    // one delay: each row out[j] takes its terms in (t, b) order
    for (std::int64_t t = 0; t + d_uniform < T; ++t)
      for (std::int64_t b = 0; b < B; ++b) {
        const std::int64_t n_active = rows.active(t, b, j0, nj, active.data(), 1);
        const Real* grow = g + ((t + d_uniform) * B + b) * N;
        for (std::int64_t a = 0; a < n_active; ++a) {
          const std::int64_t j = j0 + active[a];
          add_scaled(out + j * N, grow, rows.value(t, b, j), N);
        }
      }
  });
}

template void forward<float>(const Layer<float>&, const LayerOutputs<float>&, unsigned);
template void forward<double>(const Layer<double>&, const LayerOutputs<double>&, unsigned);
template void backward<float>(const Layer<float>&, const LayerGrad<float>&, float*, unsigned);
template void backward<double>(const Layer<double>&, const LayerGrad<double>&, double*, unsigned);
template void delayed_outer<float>(std::int64_t, std::int64_t, std::int64_t, std::int64_t, const Activity<float>&,
                                   const float*, const std::int32_t*, std::int32_t, float*, unsigned);
template void delayed_outer<double>(std::int64_t, std::int64_t, std::int64_t, std::int64_t, const Activity<double>&,
                                    const double*, const std::int32_t*, std::int32_t, double*, unsigned);

}  // namespace bptt
}  // namespace ahpsim
