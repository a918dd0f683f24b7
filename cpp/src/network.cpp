#include "ahpsim/network.hpp"
#include "ahpsim/cpu.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <stdexcept>
#include <atomic>
#include <thread>
#include <type_traits>

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#endif

namespace ahpsim {

namespace {
[[noreturn]] void fail(const std::string& msg) { throw std::invalid_argument(msg); }
}  // namespace

template <class Real>
Network<Real>::Network(double dt, std::uint64_t seed) : dt_(dt), seed_(seed) {
  if (!(dt > 0.0) || !std::isfinite(dt)) fail("dt must be a positive finite number of ms, got " + std::to_string(dt));
}

template <class Real>
void Network<Real>::require_no_state(const char* what) const {
  if (!trials_.empty())
    throw std::logic_error(std::string("cannot ") + what +
                           " while the network holds simulation state; call reset_state() first");
}

template <class Real>
std::uint32_t Network<Real>::add_input(const std::string& name, std::uint32_t n, double rate) {
  require_no_state("add an input group");
  if (n == 0) fail("input group '" + name + "': n must be >= 1");
  if (!(rate >= 0.0) || !std::isfinite(rate)) fail("poisson rate must be finite and >= 0 Hz");
  if (rate * dt_ / 1000.0 > 1.0) fail("poisson rate * dt exceeds one spike per step");
  inputs_.push_back(InputGroup{name, n, rate});
  prepared_ = false;
  return static_cast<std::uint32_t>(inputs_.size() - 1);
}

template <class Real>
std::uint32_t Network<Real>::add_population(const std::string& name, std::uint32_t n, PopulationParams p) {
  require_no_state("add a population");
  if (n == 0) fail("population '" + name + "': n must be >= 1");
  if (static_cast<std::uint64_t>(n_neurons_) + n > 0xFFFFFFF0ULL) fail("too many neurons (more than 2^32)");
  auto check = [&](const std::vector<double>& v, const char* what, bool needed, bool positive) {
    if (!needed) return;
    if (v.size() != n) fail(std::string(what) + ": expected " + std::to_string(n) + " values");
    for (double x : v) {
      if (!std::isfinite(x)) fail(std::string(what) + " must be finite");
      if (positive && x < 0) fail(std::string(what) + " must be >= 0");
    }
  };
  const bool spk = is_spiking(p.kind);
  const bool aux = p.kind == ModelKind::AHP || p.kind == ModelKind::ALIF;
  check(p.tau_m, "tau_m", true, true);
  check(p.tau_aux, "tau_aux", aux, true);
  check(p.beta, "beta", aux, false);
  check(p.v_th, "v_th", spk, false);
  check(p.bias, "bias", true, false);
  if (spk) {
    if (p.n_ref.size() != n) fail("n_ref: expected " + std::to_string(n) + " values");
    for (auto r : p.n_ref)
      if (r < 0) fail("n_ref must be >= 0");
  }
  Population pop{name, n_neurons_, n, std::move(p)};
  n_neurons_ += n;
  pops_.push_back(std::move(pop));
  prepared_ = false;
  return static_cast<std::uint32_t>(pops_.size() - 1);
}

template <class Real>
std::uint32_t Network<Real>::connect(bool pre_is_input, std::uint32_t pre, std::uint32_t post, std::uint64_t n_syn,
                                     const std::uint32_t* pre_idx, const std::uint32_t* post_idx,
                                     const Real* weight, const std::uint16_t* delay) {
  require_no_state("connect");
  if (post >= pops_.size()) fail("post: no such population");
  std::uint32_t n_pre;
  bool zero_ok = pre_is_input || pops_[post].params.kind == ModelKind::Readout;
  if (pre_is_input) {
    if (pre >= inputs_.size()) fail("pre: no such input group");
    n_pre = inputs_[pre].n;
  } else {
    if (pre >= pops_.size()) fail("pre: no such population");
    if (!is_spiking(pops_[pre].params.kind)) fail("pre: a readout does not spike and cannot be a source");
    n_pre = pops_[pre].n;
  }
  const std::uint32_t n_post = pops_[post].n;
  for (std::uint64_t k = 0; k < n_syn; ++k) {
    if (pre_idx[k] >= n_pre) fail("pre index " + std::to_string(pre_idx[k]) + " out of range [0, " + std::to_string(n_pre) + ")");
    if (post_idx[k] >= n_post) fail("post index " + std::to_string(post_idx[k]) + " out of range [0, " + std::to_string(n_post) + ")");
    if (!std::isfinite(static_cast<double>(weight[k]))) fail("weights must be finite");
    if (delay[k] == 0 && !zero_ok) fail("delay must be >= 1 step between spiking neurons");
  }
  Projection<Real> p = build_projection<Real>(n_pre, n_syn, pre_idx, post_idx, weight, delay, pops_[post].start);
  p.build_dense_rows();
  return add_projection(std::move(p), pre_is_input, pre, post);
}

template <class Real>
std::uint32_t Network<Real>::add_projection(Projection<Real>&& p, bool pre_is_input, std::uint32_t pre,
                                            std::uint32_t post) {
  p.pre_group = pre;
  p.pre_is_input = pre_is_input;
  p.post_pop = post;
  projs_.push_back(std::move(p));
  prepared_ = false;
  return static_cast<std::uint32_t>(projs_.size() - 1);
}

template <class Real>
void Network<Real>::set_projection_weights(std::uint32_t k, std::uint64_t n, const Real* weight) {
  if (k >= projs_.size()) fail("projection index out of range");
  Projection<Real>& p = projs_[k];
  if (n != p.n_synapses()) fail("weights: expected " + std::to_string(p.n_synapses()) + " values, got " + std::to_string(n));
  for (std::uint64_t i = 0; i < n; ++i)
    if (!std::isfinite(static_cast<double>(weight[i]))) fail("weights must be finite");
  p.weight.assign(weight, weight + n);
  p.compress_weights();
  if (p.dense()) {  // refresh the dense copy of each segment's run (the layout does not change)
    for (std::uint64_t s = 0; s < p.seg_end.size(); ++s) {
      const std::uint64_t b = p.seg_begin(s), e = p.seg_end[s];
      for (std::uint64_t i = b; i < e; ++i) p.dense_w[p.dense_off[s] + (p.target[i] - p.dense_t0[s])] = p.weight_of(i);
    }
  }
}

template <class Real>
void Network<Real>::set_projection_delays(std::uint32_t k, std::uint64_t n, const std::uint16_t* delay) {
  require_no_state("change delays");
  if (k >= projs_.size()) fail("projection index out of range");
  const Projection<Real>& old = projs_[k];
  if (n != old.n_synapses()) fail("delays: expected " + std::to_string(old.n_synapses()) + " values, got " + std::to_string(n));
  const bool zero_ok = old.pre_is_input || pops_[old.post_pop].params.kind == ModelKind::Readout;
  std::vector<std::uint32_t> pre(n), post(n);
  std::vector<Real> w(n);
  const std::uint32_t offset = pops_[old.post_pop].start;
  for (std::uint32_t r = 0; r < old.n_pre; ++r)
    for (std::uint64_t s = old.seg_ptr[r]; s < old.seg_ptr[r + 1]; ++s)
      for (std::uint64_t i = old.seg_begin(s); i < old.seg_end[s]; ++i) {
        if (delay[i] == 0 && !zero_ok) fail("delay must be >= 1 step between spiking neurons");
        pre[i] = r;
        post[i] = old.target[i] - offset;
        w[i] = old.weight_of(i);
      }
  Projection<Real> p = build_projection<Real>(old.n_pre, n, pre.data(), post.data(), w.data(), delay, offset);
  p.compress_weights();
  p.build_dense_rows();
  p.pre_group = old.pre_group;
  p.pre_is_input = old.pre_is_input;
  p.post_pop = old.post_pop;
  projs_[k] = std::move(p);
  prepared_ = false;
}

template <class Real>
std::uint32_t Network<Real>::connect_fixed_indegree(bool pre_is_input, std::uint32_t pre, std::uint32_t post,
                                                    std::uint32_t indegree, Real weight, std::uint16_t delay,
                                                    std::uint64_t seed, bool allow_autapses) {
  require_no_state("connect");
  if (post >= pops_.size()) fail("post: no such population");
  std::uint32_t n_pre = pre_is_input ? (pre < inputs_.size() ? inputs_[pre].n : 0) : (pre < pops_.size() ? pops_[pre].n : 0);
  if (n_pre == 0) fail("pre: no such group");
  if (!pre_is_input && !is_spiking(pops_[pre].params.kind)) fail("pre: a readout cannot be a source");
  const bool same = !pre_is_input && pre == post;
  if (same && !allow_autapses && n_pre < 2 && indegree > 0) fail("indegree > 0 needs >= 2 neurons without autapses");
  if (!std::isfinite(static_cast<double>(weight))) fail("weight must be finite");
  if (delay == 0 && !(pre_is_input || pops_[post].params.kind == ModelKind::Readout))
    fail("delay must be >= 1 step between spiking neurons");
  const std::uint32_t n_post = pops_[post].n;
  // Draw sources per target, then transpose by counting sort straight into the CSR arrays.
  Rng rng(seed, 0xC0FFEE, post);
  // a partitioned process draws every target's sources (the same stream) but keeps its own targets
  const std::uint32_t start = pops_[post].start;
  const std::uint32_t j0 = std::min(n_post, part_lo_ > start ? part_lo_ - start : 0u);
  const std::uint32_t j1 = std::max(j0, std::min(n_post, part_hi_ > start ? part_hi_ - start : 0u));
  const std::uint64_t n_keep = static_cast<std::uint64_t>(j1 - j0) * indegree;
  std::vector<std::uint32_t> src(n_keep);
  for (std::uint32_t j = 0; j < n_post; ++j) {
    const bool keep = j >= j0 && j < j1;
    for (std::uint32_t k = 0; k < indegree; ++k) {
      std::uint32_t s;
      do {
        s = static_cast<std::uint32_t>(rng.below(n_pre));
      } while (same && !allow_autapses && s == j);
      if (keep) src[static_cast<std::uint64_t>(j - j0) * indegree + k] = s;
    }
  }
  Projection<Real> p;
  p.n_pre = n_pre;
  std::vector<std::uint64_t> row_start(static_cast<std::size_t>(n_pre) + 1, 0);
  for (auto s : src) ++row_start[s + 1];
  for (std::size_t r = 0; r < n_pre; ++r) row_start[r + 1] += row_start[r];
  p.target.resize(n_keep);
  {
    std::vector<std::uint64_t> fill(row_start.begin(), row_start.end() - 1);
    const std::uint32_t off = start + j0;
    for (std::uint64_t k = 0; k < n_keep; ++k) p.target[fill[src[k]]++] = off + static_cast<std::uint32_t>(k / indegree);
  }
  std::vector<std::uint32_t>().swap(src);
  p.hom_weight = weight;
  p.seg_ptr.resize(static_cast<std::size_t>(n_pre) + 1);
  for (std::uint32_t r = 0; r < n_pre; ++r) {
    p.seg_ptr[r] = p.seg_delay.size();
    if (row_start[r + 1] > row_start[r]) {
      p.seg_delay.push_back(delay);
      p.seg_end.push_back(row_start[r + 1]);
    }
  }
  p.seg_ptr[n_pre] = p.seg_delay.size();
  return add_projection(std::move(p), pre_is_input, pre, post);
}

template <class Real>
void Network<Real>::add_poisson_drive(std::uint32_t pop, double rate_hz, double weight) {
  require_no_state("add a Poisson drive");
  if (pop >= pops_.size()) fail("population: no such population");
  if (!(rate_hz >= 0.0) || !std::isfinite(rate_hz)) fail("rate must be finite and >= 0 Hz");
  if (!std::isfinite(weight)) fail("weight must be finite");
  if (rate_hz * dt_ / 1000.0 > 1e6) fail("rate * dt is more than 1e6 events per step");
  drives_.push_back(PoissonDrive{pop, rate_hz, weight});
  prepared_ = false;
}

template <class Real>
void Network<Real>::prepare() {
  if (prepared_) return;
  consts_.assign(pops_.size(), PopulationConstants<Real>{});
  for (std::size_t p = 0; p < pops_.size(); ++p) consts_[p].prepare(pops_[p].params, dt_);
  std::uint32_t max_d = 0;
  proj_from_pop_.assign(pops_.size(), {});
  proj_from_input_.assign(inputs_.size(), {});
  for (std::uint32_t k = 0; k < projs_.size(); ++k) {
    max_d = std::max<std::uint32_t>(max_d, projs_[k].max_delay());
    (projs_[k].pre_is_input ? proj_from_input_ : proj_from_pop_)[projs_[k].pre_group].push_back(k);
  }
  ring_slots_ = max_d + 1;
  drive_tables_.clear();
  drive_thresholds_.clear();
  drive_fast_.clear();
  for (const auto& d : drives_) {
    drive_tables_.emplace_back(d.rate_hz * dt_ / 1000.0);
    std::vector<std::uint32_t> t = drive_tables_.back().thresholds32();
    // up to a mean of about 20 per step, comparing with every threshold beats a table lookup
    if (t.size() > kMaxCompareThresholds) t.clear();
    // compare every draw with the thresholds up to P(k >= n_fast) <= 1/256, the rest only when needed
    std::uint32_t fast = 0;
    while (fast < t.size() && (fast == 0 || 4294967296.0 - static_cast<double>(t[fast - 1]) > 4294967296.0 / 256.0))
      ++fast;
    drive_fast_.push_back(fast);
    drive_thresholds_.push_back(std::move(t));
  }
  input_spike_prob_.clear();
  for (const auto& g : inputs_) input_spike_prob_.push_back(g.poisson_rate_hz * dt_ / 1000.0);
  prepared_ = true;
}

template <class Real>
void Network<Real>::init_state(std::uint32_t n_trials, std::uint64_t first_trial) {
  if (n_trials == 0) fail("n_trials must be >= 1");
  if (n_neurons_ == 0) fail("the network has no neurons; add a population first");
  prepare();
  const std::size_t N = n_neurons_;
  const double bytes = static_cast<double>(n_trials) * static_cast<double>(state_bytes_per_trial());
  if (bytes > 64e9) fail("state of " + std::to_string(n_trials) + " trials would need more than 64 GB");
  trials_.clear();
  window_open_.clear();
  trials_.resize(n_trials);
  for (std::uint32_t b = 0; b < n_trials; ++b) {
    auto& st = trials_[b];
    st.v.assign(N, Real(0));
    st.aux.assign(N, Real(0));
    st.refr.assign(N, 0);
    st.z.assign(N, 0);
    st.ring.assign(N * ring_slots_, Real(0));
    const std::uint64_t trial = first_trial + b;  // streams by global trial index: chunked runs agree
    st.rng.seed(seed_, 1, trial);
    st.block_rng.resize((N + kRngBlock - 1) / kRngBlock);
    for (std::size_t k = 0; k < st.block_rng.size(); ++k) st.block_rng[k].seed(seed_, 2 + k, trial);
  }
  t_ = 0;
}

template <class Real>
void Network<Real>::reset_state() {
  trials_.clear();
  window_open_.clear();
  t_ = 0;
}

template <class Real>
Snapshot<Real> Network<Real>::snapshot() const {
  if (trials_.empty()) throw std::logic_error("no simulation state to store; run the network first");
  return Snapshot<Real>{t_, n_neurons_, ring_slots_, trials_};
}

template <class Real>
void Network<Real>::restore(const Snapshot<Real>& s) {
  if (s.n_neurons != n_neurons_ || (prepared_ && s.ring_slots != ring_slots_))
    throw std::logic_error("snapshot does not fit this network's structure");
  prepare();
  if (s.ring_slots != ring_slots_) throw std::logic_error("snapshot does not fit this network's delays");
  trials_ = s.trials;
  window_open_.clear();
  t_ = s.t;
}

template <class Real>
std::vector<double> Network<Real>::get_state(const std::string& var) const {
  const std::size_t N = n_neurons_;
  std::vector<double> out(trials_.size() * N);
  for (std::size_t b = 0; b < trials_.size(); ++b) {
    const auto& st = trials_[b];
    for (std::size_t j = 0; j < N; ++j) {
      double x;
      if (var == "v") x = st.v[j];
      else if (var == "aux") x = st.aux[j];
      else if (var == "refr") x = st.refr[j];
      else if (var == "z") x = st.z[j];
      else fail("state variable must be one of 'v', 'aux', 'refr', 'z'");
      out[b * N + j] = x;
    }
  }
  return out;
}

template <class Real>
void Network<Real>::set_state(const std::string& var, const double* values, std::size_t size) {
  const std::size_t N = n_neurons_;
  if (trials_.empty()) throw std::logic_error("no simulation state; call init_state first");
  if (size != trials_.size() * N) fail("state values: expected n_trials * n_neurons values");
  for (std::size_t b = 0; b < trials_.size(); ++b) {
    auto& st = trials_[b];
    for (std::size_t j = 0; j < N; ++j) {
      const double x = values[b * N + j];
      if (!std::isfinite(x)) fail("state values must be finite");
      if (var == "v") st.v[j] = static_cast<Real>(x);
      else if (var == "aux") st.aux[j] = static_cast<Real>(x);
      else if (var == "refr") st.refr[j] = static_cast<std::int32_t>(x);
      else if (var == "z") st.z[j] = x != 0.0;
      else fail("state variable must be one of 'v', 'aux', 'refr', 'z'");
    }
  }
}

template <class Real>
Counters Network<Real>::counters() const {
  Counters c;
  for (const auto& st : trials_) {
    c.spikes += st.counters.spikes;
    c.syn_events += st.counters.syn_events;
    c.input_events += st.counters.input_events;
    c.drive_events += st.counters.drive_events;
    c.neuron_updates += st.counters.neuron_updates;
  }
  return c;
}

template <class Real>
std::uint64_t Network<Real>::n_synapses() const {
  std::uint64_t n = 0;
  for (const auto& p : projs_) n += p.n_synapses();
  return n;
}

template <class Real>
std::size_t Network<Real>::synapse_bytes() const {
  std::size_t n = 0;
  for (const auto& p : projs_) n += p.bytes();
  return n;
}

template <class Real>
std::size_t Network<Real>::state_bytes_per_trial() const {
  std::uint32_t max_d = 0;
  for (const auto& p : projs_) max_d = std::max<std::uint32_t>(max_d, p.max_delay());
  const std::size_t N = n_neurons_;
  return sizeof(TrialState<Real>) + N * (2 * sizeof(Real) + sizeof(std::int32_t) + sizeof(std::uint8_t)) +
         N * (max_d + 1) * sizeof(Real) + (N + kRngBlock - 1) / kRngBlock * sizeof(Rng);
}

template <class Real>
std::vector<std::uint32_t> Network<Real>::readout_ids() const {
  std::vector<std::uint32_t> ids;
  for (const auto& p : pops_)
    if (p.params.kind == ModelKind::Readout)
      for (std::uint32_t i = 0; i < p.n; ++i) ids.push_back(p.start + i);
  return ids;
}

namespace {

// Barrier for a fixed team of threads: spins briefly, then yields (cores may be oversubscribed).
class SpinBarrier {
 public:
  explicit SpinBarrier(unsigned n) : n_(n) {}
  void wait() {
    if (n_ == 1) return;
    const unsigned gen = gen_.load(std::memory_order_acquire);
    if (count_.fetch_add(1, std::memory_order_acq_rel) + 1 == n_) {
      count_.store(0, std::memory_order_relaxed);
      gen_.fetch_add(1, std::memory_order_acq_rel);
      return;
    }
    for (unsigned spins = 0; gen_.load(std::memory_order_acquire) == gen; ++spins)
      if (spins > 4000) std::this_thread::yield();
  }

 private:
  const unsigned n_;
  std::atomic<unsigned> count_{0};
  std::atomic<unsigned> gen_{0};
};

// dst[i] += w[i] * x over a contiguous run (x == 1: dst[i] += w[i], the same rounding as the sparse
// path). Compiled for AVX2 and for the baseline, chosen at load time (wheels stay portable); the two
// give identical results since each element is one add (and one multiply), in the same order.
AHPSIM_CLONES void add_run_f(float* AHPSIM_RESTRICT dst, const float* AHPSIM_RESTRICT w, float x, std::uint32_t n) {
  if (x == 1.0f) {
    for (std::uint32_t i = 0; i < n; ++i) dst[i] += w[i];
  } else {
    for (std::uint32_t i = 0; i < n; ++i) dst[i] += w[i] * x;
  }
}
AHPSIM_CLONES void add_run_d(double* AHPSIM_RESTRICT dst, const double* AHPSIM_RESTRICT w, double x, std::uint32_t n) {
  if (x == 1.0) {
    for (std::uint32_t i = 0; i < n; ++i) dst[i] += w[i];
  } else {
    for (std::uint32_t i = 0; i < n; ++i) dst[i] += w[i] * x;
  }
}
inline void add_run(float* dst, const float* w, float x, std::uint32_t n) { add_run_f(dst, w, x, n); }
inline void add_run(double* dst, const double* w, double x, std::uint32_t n) { add_run_d(dst, w, x, n); }

}  // namespace

// Adds x * weight of every synapse of `row` whose target lies in [lo, hi) to the ring slot of its
// delay. Targets are sorted inside a segment, so a thread owning [lo, hi) finds its part by bisection;
// each target then receives its terms in the same order whatever the number of threads.
template <class Real>
inline void Network<Real>::deliver(const Projection<Real>& p, std::uint32_t row, Real x, Real* const* slots,
                                   std::uint32_t lo, std::uint32_t hi, Counters& cnt) const {
  const std::uint64_t s_end = p.seg_ptr[row + 1];
  const std::uint32_t* tg = p.target.data();
  const bool whole = lo == 0 && hi >= n_neurons_;
  std::uint64_t delivered = 0;
  for (std::uint64_t s = p.seg_ptr[row]; s < s_end; ++s) {
    Real* dst = slots[p.seg_delay[s]];
    if (!dst) continue;  // exchange mode: this delay is delivered later (deliver_exchanged)
    std::uint64_t k = p.seg_begin(s);
    std::uint64_t e = p.seg_end[s];
    if (!whole) {
      k = static_cast<std::uint64_t>(std::lower_bound(tg + k, tg + e, lo) - tg);
      e = static_cast<std::uint64_t>(std::lower_bound(tg + k, tg + e, hi) - tg);
    }
    delivered += e - k;
    if (p.dense()) {
      // contiguous run of weights (zeros where no synapse): a vectorizable loop over targets
      std::uint32_t t0 = p.dense_t0[s], t1 = t0 + p.dense_len[s];
      const Real* w = p.dense_w.data() + p.dense_off[s];
      if (!whole) {
        const std::uint32_t a = std::max(t0, lo), b = std::min(t1, hi);
        if (a >= b) continue;
        w += a - t0;
        t0 = a;
        t1 = b;
      }
      add_run(dst + t0, w, x, t1 - t0);
    } else if (p.homogeneous()) {
      const Real wx = x == Real(1) ? p.hom_weight : p.hom_weight * x;
      // unrolled: independent read-modify-writes overlap in the pipeline
      for (; k + 4 <= e; k += 4) {
        dst[tg[k]] += wx;
        dst[tg[k + 1]] += wx;
        dst[tg[k + 2]] += wx;
        dst[tg[k + 3]] += wx;
      }
      for (; k < e; ++k) dst[tg[k]] += wx;
    } else {
      const Real* w = p.weight.data();
      if (x == Real(1)) {
        for (; k < e; ++k) dst[tg[k]] += w[k];
      } else {
        for (; k < e; ++k) dst[tg[k]] += w[k] * x;
      }
    }
  }
  (p.pre_is_input ? cnt.input_events : cnt.syn_events) += delivered;
}

// Starts loading the first synapses (targets, and weights where they differ) of source `row`.
template <class Real>
inline void prefetch_synapses(const Projection<Real>& p, std::uint32_t row) {
  const std::uint64_t s = p.seg_ptr[row];
  if (s >= p.seg_ptr[row + 1] || p.dense()) return;
  const std::uint64_t b = p.seg_begin(s), n = p.seg_end[p.seg_ptr[row + 1] - 1] - b;
  const char* t = reinterpret_cast<const char*>(p.target.data() + b);
  const std::uint64_t bytes = std::min<std::uint64_t>(n * sizeof(std::uint32_t), 512);
  for (std::uint64_t o = 0; o < bytes; o += 64) __builtin_prefetch(t + o);
  if (!p.homogeneous()) __builtin_prefetch(p.weight.data() + b);
}

namespace {

// One step of the four streams of an Rng4 (state in s0..s3, lane-major), eight 32-bit uniforms out:
// lane l gives u[2l] (its low half) and u[2l + 1] (its high half), the memory order of the 4 x 64 bits.
inline void rng4_step(std::uint64_t* AHPSIM_RESTRICT s0, std::uint64_t* AHPSIM_RESTRICT s1,
                      std::uint64_t* AHPSIM_RESTRICT s2, std::uint64_t* AHPSIM_RESTRICT s3,
                      std::uint32_t* AHPSIM_RESTRICT u) {
  for (int l = 0; l < 4; ++l) {
    const std::uint64_t a = s0[l] + s3[l];
    const std::uint64_t r = ((a << 23) | (a >> 41)) + s0[l];
    const std::uint64_t t = s1[l] << 17;
    s2[l] ^= s0[l];
    s3[l] ^= s1[l];
    s1[l] ^= s2[l];
    s0[l] ^= s3[l];
    s2[l] ^= t;
    s3[l] = (s3[l] << 45) | (s3[l] >> 19);
    u[2 * l] = static_cast<std::uint32_t>(r);
    u[2 * l + 1] = static_cast<std::uint32_t>(r >> 32);
  }
}

// Poisson counts for the n neurons at out[0..n), eight per step of the streams: k = the number of CDF
// thresholds at or below the uniform (inversion without a table lookup); out[i] += w * k. Returns the
// number of events. Portable version; drive_compare_avx2 computes the same numbers.
template <class Real>
std::uint64_t drive_compare_portable(Real* out, std::uint32_t n, Real w, const std::uint32_t* thr, std::uint32_t n_thr,
                                     std::uint64_t* state) {
  std::uint64_t* s0 = state;
  std::uint64_t* s1 = state + 4;
  std::uint64_t* s2 = state + 8;
  std::uint64_t* s3 = state + 12;
  std::uint64_t events = 0;
  for (std::uint32_t base = 0; base < n; base += 8) {
    std::uint32_t u[8];
    rng4_step(s0, s1, s2, s3, u);
    const std::uint32_t m = std::min<std::uint32_t>(8, n - base);
    for (std::uint32_t i = 0; i < m; ++i) {
      std::uint32_t k = 0;
      while (k < n_thr && thr[k] <= u[i]) ++k;  // thresholds ascend
      out[base + i] += w * static_cast<Real>(k);
      events += k;
    }
  }
  return events;
}

#if defined(__GNUC__) && defined(__x86_64__)
#define AHPSIM_HAVE_AVX2_PATH 1
// One step of the four streams and the Poisson counts of its eight uniforms; tb[j] holds threshold j
// broadcast to all lanes, sign-biased for a signed compare.
__attribute__((target("avx2"), always_inline)) inline __m256i poisson8_avx2(__m256i& s0, __m256i& s1, __m256i& s2,
                                                                           __m256i& s3, const __m256i* tb,
                                                                           std::uint32_t n_thr, std::uint32_t n_fast) {
  const __m256i a = _mm256_add_epi64(s0, s3);
  const __m256i r = _mm256_add_epi64(_mm256_or_si256(_mm256_slli_epi64(a, 23), _mm256_srli_epi64(a, 41)), s0);
  const __m256i t = _mm256_slli_epi64(s1, 17);
  s2 = _mm256_xor_si256(s2, s0);
  s3 = _mm256_xor_si256(s3, s1);
  s1 = _mm256_xor_si256(s1, s2);
  s0 = _mm256_xor_si256(s0, s3);
  s2 = _mm256_xor_si256(s2, t);
  s3 = _mm256_or_si256(_mm256_slli_epi64(s3, 45), _mm256_srli_epi64(s3, 19));
  const __m256i ub = _mm256_xor_si256(r, _mm256_set1_epi32(static_cast<int>(0x80000000u)));
  // minus the number of thresholds above u, in two independent sums
  __m256i above0 = _mm256_setzero_si256(), above1 = _mm256_setzero_si256();
  std::uint32_t j = 0;
  for (; j + 2 <= n_fast; j += 2) {
    above0 = _mm256_add_epi32(above0, _mm256_cmpgt_epi32(tb[j], ub));
    above1 = _mm256_add_epi32(above1, _mm256_cmpgt_epi32(tb[j + 1], ub));
  }
  if (j < n_fast) above0 = _mm256_add_epi32(above0, _mm256_cmpgt_epi32(tb[j], ub));
  // The thresholds ascend: unless some u lies at or above thr[n_fast - 1] (rare by the choice of
  // n_fast), all the remaining ones are above every u.
  if (n_fast < n_thr && _mm256_movemask_epi8(_mm256_cmpgt_epi32(tb[n_fast - 1], ub)) != -1) {
    for (j = n_fast; j < n_thr; ++j) above0 = _mm256_add_epi32(above0, _mm256_cmpgt_epi32(tb[j], ub));
    return _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(n_thr)), _mm256_add_epi32(above0, above1));
  }
  return _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(n_fast)), _mm256_add_epi32(above0, above1));
}

// Eight neurons per iteration in AVX2 registers: the four streams as 4 x 64-bit lanes, the eight
// uniforms compared with every threshold (unsigned compare via the sign-bias trick), counts converted
// and added with the same single multiply and add per neuron as the portable version.
template <class Real>
__attribute__((target("avx2"))) std::uint64_t drive_compare_avx2(Real* out, std::uint32_t n, Real w,
                                                                 const std::uint32_t* thr, std::uint32_t n_thr,
                                                                 std::uint32_t n_fast, std::uint64_t* state) {
  __m256i s0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(state));
  __m256i s1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(state + 4));
  __m256i s2 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(state + 8));
  __m256i s3 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(state + 12));
  __m256i tb[kMaxCompareThresholds];
  for (std::uint32_t j = 0; j < n_thr; ++j) tb[j] = _mm256_set1_epi32(static_cast<int>(thr[j] ^ 0x80000000u));
  __m256i ev = _mm256_setzero_si256();
  const std::uint32_t n8 = n & ~7u;
  std::uint32_t base = 0;
  for (; base < n8; base += 8) {
    const __m256i k = poisson8_avx2(s0, s1, s2, s3, tb, n_thr, n_fast);
    ev = _mm256_add_epi32(ev, k);
    if constexpr (std::is_same_v<Real, float>) {
      const __m256 add = _mm256_mul_ps(_mm256_set1_ps(w), _mm256_cvtepi32_ps(k));
      _mm256_storeu_ps(out + base, _mm256_add_ps(_mm256_loadu_ps(out + base), add));
    } else {
      const __m256d wv = _mm256_set1_pd(w);
      const __m256d lo = _mm256_mul_pd(wv, _mm256_cvtepi32_pd(_mm256_castsi256_si128(k)));
      const __m256d hi = _mm256_mul_pd(wv, _mm256_cvtepi32_pd(_mm256_extracti128_si256(k, 1)));
      _mm256_storeu_pd(out + base, _mm256_add_pd(_mm256_loadu_pd(out + base), lo));
      _mm256_storeu_pd(out + base + 4, _mm256_add_pd(_mm256_loadu_pd(out + base + 4), hi));
    }
  }
  std::uint32_t tail[8];
  std::uint64_t events = 0;
  if (base < n) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(tail), poisson8_avx2(s0, s1, s2, s3, tb, n_thr, n_fast));
    for (std::uint32_t i = 0; base + i < n; ++i) {
      out[base + i] += w * static_cast<Real>(tail[i]);
      events += tail[i];
    }
  }
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(tail), ev);
  for (int i = 0; i < 8; ++i) events += tail[i];
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(state), s0);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(state + 4), s1);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(state + 8), s2);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(state + 12), s3);
  return events;
}

#endif

// n_fast (1 <= n_fast <= n_thr, or 0 when n_thr == 0): thresholds every draw is compared with; the
// rest only when a draw lies beyond them.
template <class Real>
std::uint64_t drive_compare(Real* out, std::uint32_t n, Real w, const std::uint32_t* thr, std::uint32_t n_thr,
                            std::uint32_t n_fast, std::uint64_t* state) {
#ifdef AHPSIM_HAVE_AVX2_PATH
  if (cpu_has_avx2() && n_thr > 0) return drive_compare_avx2(out, n, w, thr, n_thr, n_fast, state);
#else
  (void)n_fast;
#endif
  return drive_compare_portable(out, n, w, thr, n_thr, state);
}

// The same for large means (long CDFs): the uniforms come from the same streams, the count from the
// guide table.
template <class Real>
std::uint64_t drive_lookup(Real* out, std::uint32_t n, Real w, const PoissonTable::View& tab, std::uint64_t* state) {
  std::uint64_t events = 0;
  for (std::uint32_t base = 0; base < n; base += 8) {
    std::uint32_t u[8];
    rng4_step(state, state + 4, state + 8, state + 12, u);
    const std::uint32_t m = std::min<std::uint32_t>(8, n - base);
    for (std::uint32_t i = 0; i < m; ++i) {
      const std::uint32_t k = tab.sample(u[i]);
      out[base + i] += w * static_cast<Real>(k);
      events += k;
    }
  }
  return events;
}

}  // namespace

// Poisson drives into the neurons [lo, hi) of one random-number block: drive by drive, from the
// block's own streams (independent of threads).
template <class Real>
inline void Network<Real>::drive_block(std::uint32_t lo, std::uint32_t hi, Rng4& rng, Real* slot, Counters& cnt) const {
  for (std::size_t d = 0; d < drives_.size(); ++d) {
    const Population& pop = pops_[drives_[d].pop];
    const std::uint32_t a = std::max(lo, pop.start), e = std::min(hi, pop.start + pop.n);
    if (a >= e) continue;
    const Real w = static_cast<Real>(drives_[d].weight);
    const std::vector<std::uint32_t>& thr = drive_thresholds_[d];
    if (!thr.empty() || drive_tables_[d].mean() == 0.0)
      cnt.drive_events += drive_compare(slot + a, e - a, w, thr.data(), static_cast<std::uint32_t>(thr.size()),
                                        drive_fast_[d], rng.s);
    else
      cnt.drive_events += drive_lookup(slot + a, e - a, w, drive_tables_[d].view(), rng.s);
  }
}

template <class Real>
void Network<Real>::run_trial(std::uint32_t b, std::int64_t T, const std::vector<InputEvents<Real>>& inputs,
                              const RecordSpec& rec, RunOutput<Real>& out, unsigned team) const {
  // Trials never share mutable state, so this const_cast is confined to trial b.
  TrialState<Real>& st = const_cast<TrialState<Real>&>(trials_[b]);
  const std::size_t N = n_neurons_;
  const std::size_t S = ring_slots_;
  const std::size_t n_state = rec.state_ids.size();
  const std::vector<std::uint32_t> ro_ids = rec.readouts ? readout_ids() : std::vector<std::uint32_t>{};
  const std::size_t n_ro = ro_ids.size();
  Real* v_tr = n_state ? out.v_trace.data() + static_cast<std::size_t>(b) * T * n_state : nullptr;
  Real* a_tr = n_state ? out.aux_trace.data() + static_cast<std::size_t>(b) * T * n_state : nullptr;
  Real* y_tr = n_ro ? out.y_trace.data() + static_cast<std::size_t>(b) * T * n_ro : nullptr;
  TrialSpikes& spk = out.spikes[b];
  Real* ring = st.ring.data();
  // this process's random-number blocks (all of them unless the network is partitioned)
  const std::uint32_t pb0 = part_lo_ / kRngBlock;
  const std::uint32_t pb1 = static_cast<std::uint32_t>((static_cast<std::uint64_t>(partition_hi()) + kRngBlock - 1) / kRngBlock);
  const std::uint32_t n_blocks = pb1 > pb0 ? pb1 - pb0 : 0;
  team = std::max(1u, std::min(team, n_blocks));
  const bool exchange = exchange_;
  const std::int64_t defer_from = t_ + T;  // exchange mode: deliveries into these steps wait

  // Shared between the team, written by one thread between barriers.
  std::vector<Real*> slots(S);                                   // slots[d]: integrated d steps from now
  std::vector<Real*> in_slots(S);                                // the same, null where deferred (exchange)
  std::vector<std::pair<std::uint32_t, std::uint32_t>> poisson_in;  // (group, channel) spikes this step
  std::vector<std::vector<std::uint32_t>> spiked(team);          // this step's spikes, per thread range
  std::vector<Counters> cnt(team);
  SpinBarrier barrier(team);

  auto worker = [&](unsigned th) {
    // Neurons [lo, hi) belong to this thread: whole random-number blocks, so draws do not depend on team.
    const std::uint32_t blk0 = pb0 + static_cast<std::uint32_t>(static_cast<std::uint64_t>(n_blocks) * th / team);
    const std::uint32_t blk1 = pb0 + static_cast<std::uint32_t>(static_cast<std::uint64_t>(n_blocks) * (th + 1) / team);
    const std::uint32_t lo = std::min<std::uint32_t>(partition_hi(), blk0 * kRngBlock);
    const std::uint32_t hi = std::max(lo, static_cast<std::uint32_t>(std::min<std::uint64_t>(partition_hi(), std::uint64_t(blk1) * kRngBlock)));
    Counters& c = cnt[th];
    std::vector<std::uint32_t>& mine = spiked[th];
    mine.reserve(256);
    for (std::int64_t k = 0; k < T; ++k) {
      const std::int64_t t = t_ + k;
      if (th == 0) {
        // A. step set-up: ring slots, Poisson input spikes (one stream per trial)
        for (std::size_t d = 0; d < S; ++d) {
          slots[d] = ring + static_cast<std::size_t>((t + static_cast<std::int64_t>(d)) % static_cast<std::int64_t>(S)) * N;
          in_slots[d] = exchange && t + static_cast<std::int64_t>(d) >= defer_from ? nullptr : slots[d];
        }
        poisson_in.clear();
        for (std::size_t g = 0; g < inputs_.size(); ++g) {
          if (!inputs_[g].is_poisson()) continue;
          const double p = input_spike_prob_[g];
          for (std::uint32_t ch = 0; ch < inputs_[g].n; ++ch)
            if (st.rng.uniform() < p) poisson_in.emplace_back(static_cast<std::uint32_t>(g), ch);
        }
      }
      barrier.wait();
      Real* slot = slots[0];
      // B1. external input of this step, routed through the input projections (exchange mode: the
      // deliveries beyond the window are logged, once, and replayed by deliver_exchanged)
      auto input = [&](std::uint32_t group, std::uint32_t ch, Real x) {
        for (auto pi : proj_from_input_[group]) deliver(projs_[pi], ch, x, in_slots.data(), lo, hi, c);
        if (exchange && th == 0) st.deferred.push_back({t, group, ch, x});
      };
      for (const auto& in : inputs) {
        const auto& projs = proj_from_input_[in.group];
        if (projs.empty()) continue;
        const std::size_t bi = in.n_batch == 1 ? 0 : b;
        if (in.dense()) {
          const std::size_t n = in.n_channels, row = (bi * static_cast<std::size_t>(T) + k) * n;
          if (in.dense_spikes) {
            const std::uint8_t* x = in.dense_spikes + row;
            for (std::size_t ch = 0; ch < n; ++ch)
              if (x[ch]) input(in.group, static_cast<std::uint32_t>(ch), Real(1));
          } else {
            const Real* x = in.dense_value + row;
            for (std::size_t ch = 0; ch < n; ++ch)
              if (x[ch] != Real(0)) input(in.group, static_cast<std::uint32_t>(ch), x[ch]);
          }
          continue;
        }
        const std::int64_t* ptr = in.ptr + bi * (T + 1);
        for (std::int64_t e = ptr[k]; e < ptr[k + 1]; ++e)
          input(in.group, static_cast<std::uint32_t>(in.channel[e]), in.value[e]);
      }
      for (const auto& gc : poisson_in) input(gc.first, gc.second, Real(1));
      // B2. Poisson drives, block by block
      if (!drives_.empty())
        for (std::uint32_t blk = blk0; blk < blk1; ++blk)
          drive_block(blk * kRngBlock, std::min<std::uint32_t>(hi, (blk + 1) * kRngBlock), st.block_rng[blk], slot, c);
      // B3. spiking populations
      mine.clear();
      StateView<Real> sv{st.v.data(), st.aux.data(), st.refr.data(), st.z.data(), slot};
      for (std::size_t p = 0; p < pops_.size(); ++p) {
        const Population& pop = pops_[p];
        const std::uint32_t a = std::max(lo, pop.start), e = std::min(hi, pop.start + pop.n);
        if (a >= e) continue;
        const std::uint32_t off = a - pop.start;
        switch (pop.params.kind) {
          case ModelKind::LIF: LIFModel::step(consts_[p], off, a, e - a, sv); break;
          case ModelKind::AHP: AHPModel::step(consts_[p], off, a, e - a, sv); break;
          case ModelKind::ALIF: ALIFModel::step(consts_[p], off, a, e - a, sv); break;
          case ModelKind::Readout: continue;
        }
        if (is_spiking(pop.params.kind)) collect_spikes(sv.z + a, a, e - a, mine);
      }
      c.spikes += mine.size();
      c.neuron_updates += hi - lo;
      barrier.wait();
      // C1. route this step's spikes (thread lists in order: sorted by neuron id) into [lo, hi)
      // The synapse lists of the spiking sources lie scattered in memory (L3 at best): while one
      // spike is delivered, the row index of a spike 8 ahead and the synapses of one 4 ahead load.
      std::size_t p = 0, p_near = 0, p_far = 0;
      auto row_of = [&](std::uint32_t jj, std::size_t& q) {
        while (jj >= pops_[q].start + pops_[q].n) ++q;
        return jj - pops_[q].start;
      };
      for (const auto& list : spiked)
        for (std::size_t i = 0; i < list.size() && !exchange; ++i) {
          const std::uint32_t j = list[i];
          if (i + 8 < list.size()) {
            const std::uint32_t r = row_of(list[i + 8], p_far);
            for (auto pi : proj_from_pop_[p_far]) __builtin_prefetch(projs_[pi].seg_ptr.data() + r);
          }
          if (i + 4 < list.size()) {
            const std::uint32_t r = row_of(list[i + 4], p_near);
            for (auto pi : proj_from_pop_[p_near]) prefetch_synapses(projs_[pi], r);
          }
          const std::uint32_t row = row_of(j, p);
          for (auto pi : proj_from_pop_[p]) deliver(projs_[pi], row, Real(1), slots.data(), lo, hi, c);
        }
      // C2. readouts (they may receive this step's spikes through delay-0 synapses)
      for (std::size_t q = 0; q < pops_.size(); ++q) {
        const Population& pop = pops_[q];
        if (pop.params.kind != ModelKind::Readout) continue;
        const std::uint32_t a = std::max(lo, pop.start), e = std::min(hi, pop.start + pop.n);
        if (a < e) ReadoutModel::step(consts_[q], a - pop.start, a, e - a, sv);
      }
      barrier.wait();
      if (th == 0) {
        // D. recording (reads state only; the next step writes state after its first barrier)
        std::size_t q = 0;
        for (const auto& list : spiked)
          for (std::uint32_t j : list) {
            while (j >= pops_[q].start + pops_[q].n) ++q;
            if (!rec.spikes_of_pop.empty() && rec.spikes_of_pop[q]) {
              spk.step.push_back(t);
              spk.id.push_back(j);
            }
          }
        for (std::size_t i = 0; i < n_state; ++i) {
          v_tr[static_cast<std::size_t>(k) * n_state + i] = st.v[rec.state_ids[i]];
          a_tr[static_cast<std::size_t>(k) * n_state + i] = st.aux[rec.state_ids[i]];
        }
        for (std::size_t i = 0; i < n_ro; ++i) y_tr[static_cast<std::size_t>(k) * n_ro + i] = st.v[ro_ids[i]];
      }
    }
  };

  if (team == 1) {
    worker(0);
  } else {
    std::vector<std::thread> pool;
    for (unsigned th = 1; th < team; ++th) pool.emplace_back(worker, th);
    worker(0);
    for (auto& th : pool) th.join();
  }
  for (const auto& c : cnt) {
    st.counters.spikes += c.spikes;
    st.counters.syn_events += c.syn_events;
    st.counters.input_events += c.input_events;
    st.counters.drive_events += c.drive_events;
    st.counters.neuron_updates += c.neuron_updates;
  }
}

template <class Real>
RunOutput<Real> Network<Real>::run(std::int64_t T, const std::vector<InputEvents<Real>>& inputs,
                                                  const RecordSpec& rec, unsigned n_threads) {
  if (T < 0) fail("T must be >= 0 steps");
  if (trials_.empty()) fail("no simulation state; call init_state(n_trials) first");
  prepare();
  for (const auto& in : inputs) {
    if (in.group >= inputs_.size()) fail("inputs: no such input group");
    if (inputs_[in.group].is_poisson()) fail("inputs: '" + inputs_[in.group].name + "' is a Poisson group and takes no data");
    if (in.n_batch != 1 && in.n_batch != trials_.size()) fail("inputs: batch size must be 1 or n_trials");
    if (in.dense()) {
      if (in.n_channels != inputs_[in.group].n) fail("inputs: dense input must have one column per channel");
      if (in.dense_value)
        for (std::size_t i = 0, m = static_cast<std::size_t>(in.n_batch) * T * in.n_channels; i < m; ++i)
          if (!std::isfinite(static_cast<double>(in.dense_value[i]))) fail("inputs: values must be finite");
      continue;
    }
    const std::size_t n_ptr = static_cast<std::size_t>(in.n_batch) * (T + 1);
    for (std::size_t i = 0; i < n_ptr; ++i)
      if (in.ptr[i] < 0 || (i % (T + 1) != 0 && in.ptr[i] < in.ptr[i - 1])) fail("inputs: event offsets must be non-decreasing");
    for (std::uint32_t bb = 0; bb < in.n_batch; ++bb) {
      const std::int64_t* ptr = in.ptr + static_cast<std::size_t>(bb) * (T + 1);
      for (std::int64_t e = ptr[0]; e < ptr[T]; ++e)
        if (in.channel[e] < 0 || static_cast<std::uint32_t>(in.channel[e]) >= inputs_[in.group].n)
          fail("inputs: channel index out of range for group '" + inputs_[in.group].name + "'");
    }
  }
  for (auto id : rec.state_ids)
    if (id >= n_neurons_) fail("record: neuron id out of range");
  if (!rec.spikes_of_pop.empty() && rec.spikes_of_pop.size() != pops_.size()) fail("record: one flag per population");
  if (exchange_) {
    if (static_cast<std::uint64_t>(T) > min_delay())
      fail("exchange mode: a window of " + std::to_string(T) + " steps is longer than the smallest delay (" +
           std::to_string(min_delay()) + ") of a synapse from a population");
    if (std::find(window_open_.begin(), window_open_.end(), 1) != window_open_.end())
      fail("exchange mode: deliver_exchanged must follow every run, for every trial");
    window_t0_ = t_;
    window_open_.assign(trials_.size(), 1);
  }
  const std::uint32_t B = n_trials();
  RunOutput<Real> out;
  out.spikes.resize(B);
  const std::size_t n_ro = rec.readouts ? readout_ids().size() : 0;
  out.v_trace.resize(static_cast<std::size_t>(B) * T * rec.state_ids.size());
  out.aux_trace.resize(out.v_trace.size());
  out.y_trace.resize(static_cast<std::size_t>(B) * T * n_ro);
  n_threads = std::max(1u, n_threads);
  if (n_threads == 1 || B < n_threads) {
    // fewer trials than threads: one trial at a time, its neurons split over a team of threads
    for (std::uint32_t b = 0; b < B; ++b) run_trial(b, T, inputs, rec, out, n_threads);
  } else {
    std::vector<std::thread> pool;
    std::vector<std::exception_ptr> errors(n_threads);
    for (unsigned th = 0; th < n_threads; ++th) {
      pool.emplace_back([&, th] {
        try {
          for (std::uint32_t b = th; b < B; b += n_threads) run_trial(b, T, inputs, rec, out, 1);
        } catch (...) {
          errors[th] = std::current_exception();
        }
      });
    }
    for (auto& th : pool) th.join();
    for (auto& e : errors)
      if (e) std::rethrow_exception(e);
  }
  t_ += T;
  return out;
}

template <class Real>
void Network<Real>::set_partition(std::uint32_t lo, std::uint32_t hi) {
  require_no_state("partition the network");
  if (lo % kRngBlock != 0) fail("partition: lo must be a multiple of " + std::to_string(kRngBlock));
  if (hi < lo) fail("partition: hi must be >= lo");
  if (!projs_.empty()) fail("partition: set it before connecting");
  part_lo_ = lo;
  part_hi_ = hi;
}

template <class Real>
std::uint32_t Network<Real>::min_delay() const {
  std::uint32_t m = 65535;
  for (const auto& p : projs_)
    if (!p.pre_is_input)
      for (const auto d : p.seg_delay) m = std::min<std::uint32_t>(m, d);
  return m;
}

template <class Real>
void Network<Real>::set_exchange(bool on) {
  if (std::find(window_open_.begin(), window_open_.end(), 1) != window_open_.end())
    fail("exchange mode: the last window's spikes are not delivered yet");
  exchange_ = on;
}

template <class Real>
void Network<Real>::deliver_exchanged(std::uint32_t b, std::uint64_t n, const std::int64_t* steps,
                                      const std::uint32_t* ids) {
  if (!exchange_) fail("deliver_exchanged: the network is not in exchange mode");
  if (b >= trials_.size()) fail("deliver_exchanged: no such trial");
  if (b >= window_open_.size() || !window_open_[b]) fail("deliver_exchanged: no run of this trial to complete");
  const std::int64_t t0 = window_t0_, t1 = t_;
  for (std::uint64_t i = 0; i < n; ++i) {
    if (steps[i] < t0 || steps[i] >= t1) fail("deliver_exchanged: spike step outside the last window");
    if (ids[i] >= n_neurons_) fail("deliver_exchanged: neuron id out of range");
    if (i > 0 && (steps[i] < steps[i - 1] || (steps[i] == steps[i - 1] && ids[i] <= ids[i - 1])))
      fail("deliver_exchanged: spikes must be sorted by step, then id, without repeats");
  }
  auto& st = trials_[b];
  const std::size_t S = ring_slots_, N = n_neurons_;
  const std::uint32_t lo = part_lo_, hi = partition_hi();
  auto pop_of = [&](std::uint32_t j) {  // the population of neuron j (ids are < n_neurons_: checked)
    std::size_t p = 0;
    while (j >= pops_[p].start + pops_[p].n) ++p;
    return p;
  };
  std::vector<Real*> slots(S);
  std::size_t e = 0;
  std::uint64_t i = 0;
  std::size_t q = 0;
  for (std::int64_t k = t0; k < t1; ++k) {
    for (std::size_t d = 0; d < S; ++d)  // only what lands at or after the window's end
      slots[d] = k + static_cast<std::int64_t>(d) >= t1
                     ? st.ring.data() + static_cast<std::size_t>((k + static_cast<std::int64_t>(d)) % static_cast<std::int64_t>(S)) * N
                     : nullptr;
    // the step's inputs, then its spikes in id order: the order of a run straight through
    for (; e < st.deferred.size() && st.deferred[e].step == k; ++e) {
      const auto& in = st.deferred[e];
      for (auto pi : proj_from_input_[in.group]) deliver(projs_[pi], in.channel, in.x, slots.data(), lo, hi, st.counters);
    }
    q = 0;
    for (; i < n && steps[i] == k; ++i) {
      // as in run(): the synapse lists lie scattered in memory, so those of spikes ahead start loading
      if (i + 8 < n) {
        const std::size_t pf = pop_of(ids[i + 8]);
        for (auto pi : proj_from_pop_[pf]) __builtin_prefetch(projs_[pi].seg_ptr.data() + (ids[i + 8] - pops_[pf].start));
      }
      if (i + 4 < n) {
        const std::size_t pn = pop_of(ids[i + 4]);
        for (auto pi : proj_from_pop_[pn]) prefetch_synapses(projs_[pi], ids[i + 4] - pops_[pn].start);
      }
      const std::uint32_t j = ids[i];
      while (j >= pops_[q].start + pops_[q].n) ++q;
      if (!is_spiking(pops_[q].params.kind)) fail("deliver_exchanged: neuron " + std::to_string(j) + " is a readout");
      for (auto pi : proj_from_pop_[q]) deliver(projs_[pi], j - pops_[q].start, Real(1), slots.data(), lo, hi, st.counters);
    }
  }
  st.deferred.clear();
  window_open_[b] = 0;
}

template class Network<float>;
template class Network<double>;

}  // namespace ahpsim
