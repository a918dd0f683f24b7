// Integer engine of the Loihi fixed-point emulation: a sibling of the float engine, templated over
// a rule set (rules.hpp). A network is a flat array of compartments (each with its own du, dv,
// threshold, bias, refractory delay, spiking mode and optional parent joined with ADD) and a list
// of projections (weight mantissas with one weight exponent per projection, per-synapse delays).
//
// Step t (absolute; the state carries over between advance() calls, run() starts from zero):
//   1. input spikes of step t are pushed into the delay ring buffer (latency kInputLatency + delay);
//   2. every compartment, in index order (children before parents):
//        u <- Rules::update_u(u, du, activation delivered for step t)
//        if refractory: v <- 0 (held), no spike
//        else: v <- sat24(decay(v, dv) + u + join + bias_mant << bias_exp);
//              spike if spiking && v > vth_mant << 6, then v <- 0 and refractory-1 held steps
//        a compartment with a parent adds its v to the parent's join input (ADD join);
//   3. spikes of step t are pushed into the ring buffer (latency kRecurrentLatency + delay).
#pragma once

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "ahpsim/cpu.hpp"
#include "ahpsim/loihi/bits.hpp"

// Local pointers into the state are declared restrict so that the spike bytes written each step
// (unsigned char may alias anything) do not force every array pointer to be reloaded.
#if defined(__GNUC__) || defined(__clang__)
#define AHPSIM_LOIHI_RESTRICT __restrict__
#elif defined(_MSC_VER)
#define AHPSIM_LOIHI_RESTRICT __restrict
#else
#define AHPSIM_LOIHI_RESTRICT
#endif
#include "ahpsim/loihi/rules.hpp"

// Trial lanes (Engine::run_lanes) are written with GCC / Clang vector extensions (4 doubles per
// vector, lowered to SSE2, AVX or NEON); other compilers run every trial through the scalar step.
// On x86-64 they are compiled twice, for the baseline ISA and for AVX2, chosen at run time (wheels
// stay baseline).
#if defined(__GNUC__) || defined(__clang__)
#define AHPSIM_LOIHI_LANES 1
#define AHPSIM_LOIHI_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define AHPSIM_LOIHI_LANES 0
#define AHPSIM_LOIHI_ALWAYS_INLINE inline
#endif
#if AHPSIM_LOIHI_LANES && defined(__x86_64__)
#define AHPSIM_LOIHI_AVX2 1
#else
#define AHPSIM_LOIHI_AVX2 0
#endif

namespace ahpsim::loihi {

enum class JoinOp : std::uint8_t { kNone = 0, kAdd = 1 };

// Parameters of all compartments, one entry per compartment.
struct CompartmentSpec {
  std::vector<std::int32_t> du, dv, vth_mant, bias_mant, bias_exp, refractory;
  std::vector<std::uint8_t> spiking;   // 1: spike and reset; 0: never spikes (pass v to parent)
  std::vector<std::int32_t> parent;    // -1, or the index (> own index) of the parent compartment
  std::vector<std::uint8_t> join;      // JoinOp a parent applies to its children's voltages
  std::size_t size() const { return du.size(); }
};

// One projection: synapses as (pre, post) local indices, weight mantissas, delays.
struct ProjectionSpec {
  bool from_input = false;
  std::int32_t pre_start = 0, n_pre = 0, post_start = 0, n_post = 0;
  std::int32_t weight_exp = 0;
  std::vector<std::int32_t> pre, post, weight, delay;
  std::string name;
};

struct NetworkSpec {
  std::int32_t n_inputs = 0;
  CompartmentSpec cx;
  std::vector<ProjectionSpec> projections;
};

namespace detail {
// Calls f(m) for every non-zero byte x[m], m ascending. Input spikes are sparse: eight bytes are
// tested at once and only the non-zero ones visited (no branch per channel to mispredict).
template <class F>
inline void for_each_nonzero(const std::uint8_t* x, std::int32_t n, F f) {
  std::int32_t m = 0;
#if (defined(__GNUC__) || defined(__clang__)) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  constexpr std::uint64_t kLow7 = 0x7f7f7f7f7f7f7f7fULL, kHigh = 0x8080808080808080ULL;
  for (; m + 8 <= n; m += 8) {
    std::uint64_t w;
    std::memcpy(&w, x + m, sizeof w);
    if (!w) continue;
    std::uint64_t nz = (((w & kLow7) + kLow7) | w) & kHigh;  // the high bit of every non-zero byte
    for (; nz; nz &= nz - 1) f(m + (__builtin_ctzll(nz) >> 3));
  }
#endif
  for (; m < n; ++m)
    if (x[m]) f(m);
}

inline void check_range(const std::string& what, std::int64_t x, std::int64_t lo, std::int64_t hi) {
  if (x < lo || x > hi)
    throw std::invalid_argument(what + " = " + std::to_string(x) + " is out of range [" +
                                std::to_string(lo) + ", " + std::to_string(hi) + "]");
}
}  // namespace detail

// Validates a network against a rule set; throws std::invalid_argument naming the parameter and
// its range.
template <class Rules>
void validate(const NetworkSpec& s) {
  using detail::check_range;
  const auto& c = s.cx;
  const std::size_t n = c.size();
  if (s.n_inputs < 0) throw std::invalid_argument("n_inputs must be >= 0");
  for (auto* v : {&c.dv, &c.vth_mant, &c.bias_mant, &c.bias_exp, &c.refractory, &c.parent})
    if (v->size() != n) throw std::invalid_argument("compartment parameter arrays differ in length");
  if (c.spiking.size() != n || c.join.size() != n)
    throw std::invalid_argument("compartment parameter arrays differ in length");
  const std::string rs = std::string(" (rule set ") + Rules::kName + ")";
  for (std::size_t i = 0; i < n; ++i) {
    const std::string at = "[compartment " + std::to_string(i) + "]";
    check_range("du" + at, c.du[i], 0, Rules::kDuMax);
    check_range("dv" + at, c.dv[i], 0, Rules::kDvMax);
    check_range("vth_mant" + at, c.vth_mant[i], 0, bits::kVthMantMax);
    check_range("bias_mant" + at, c.bias_mant[i], bits::kBiasMantMin, bits::kBiasMantMax);
    check_range("bias_exp" + at, c.bias_exp[i], 0, bits::kBiasExpMax);
    check_range("refractory" + at + rs, c.refractory[i], Rules::kRefractoryMin,
                Rules::kRefractoryMax);
    if (c.join[i] > 1) throw std::invalid_argument("join" + at + " must be 0 (none) or 1 (ADD)");
    if (c.parent[i] != -1) {
      if (!Rules::kMultiCompartment)
        throw std::invalid_argument("parent" + at + ": multi-compartment neurons are not part" + rs);
      check_range("parent" + at, c.parent[i], static_cast<std::int64_t>(i) + 1,
                  static_cast<std::int64_t>(n) - 1);
      if (c.join[c.parent[i]] != static_cast<std::uint8_t>(JoinOp::kAdd))
        throw std::invalid_argument("parent" + at + ": the parent compartment needs join = ADD");
    }
    if (c.join[i] != 0 && !Rules::kMultiCompartment)
      throw std::invalid_argument("join" + at + ": multi-compartment neurons are not part" + rs);
  }
  for (std::size_t k = 0; k < s.projections.size(); ++k) {
    const auto& p = s.projections[k];
    const std::string at = "[projection " + std::to_string(k) + (p.name.empty() ? "" : " '" + p.name + "'") + "]";
    check_range("weight_exponent" + at, p.weight_exp, bits::kWeightExpMin, bits::kWeightExpMax);
    const std::int64_t pre_lim = p.from_input ? s.n_inputs : static_cast<std::int64_t>(n);
    if (p.pre_start < 0 || p.n_pre < 0 || p.pre_start + static_cast<std::int64_t>(p.n_pre) > pre_lim)
      throw std::invalid_argument("pre range" + at + " is outside the source");
    if (p.post_start < 0 || p.n_post < 0 ||
        p.post_start + static_cast<std::int64_t>(p.n_post) > static_cast<std::int64_t>(n))
      throw std::invalid_argument("post range" + at + " is outside the compartments");
    const std::size_t m = p.pre.size();
    if (p.post.size() != m || p.weight.size() != m || p.delay.size() != m)
      throw std::invalid_argument("synapse arrays" + at + " differ in length");
    for (std::size_t e = 0; e < m; ++e) {
      check_range("pre index" + at, p.pre[e], 0, p.n_pre - 1);
      check_range("post index" + at, p.post[e], 0, p.n_post - 1);
      check_range("weight_mantissa" + at + rs, p.weight[e], Rules::kWeightMantMin,
                  Rules::kWeightMantMax);
      check_range("delay" + at + rs, p.delay[e], 0, Rules::kDelayMax);
    }
  }
}

// Results of a run: [trials, steps, compartments] row-major.
struct RunOutput {
  std::vector<std::uint8_t> spikes;
  std::vector<std::int32_t> u, v;
  // [trials * n] per compartment: steps whose current wrapped at 24 bits, and whose voltage was
  // clipped at +-(2^23 - 1). Faithful to the chip, but a float network quantized with too little
  // headroom computes something else: quantize() users check these.
  std::vector<std::uint32_t> u_wraps, v_saturations;
  // spikes per compartment [n] and per input channel [n_inputs], summed over the trials (operation
  // counts without another pass over the spike array)
  std::vector<std::uint64_t> spike_counts, input_counts;
};

template <class Rules>
class Engine {
 public:
  explicit Engine(const NetworkSpec& spec) {
    validate<Rules>(spec);
    build(spec);
  }

  std::size_t n_compartments() const { return n_; }
  std::int32_t n_inputs() const { return n_in_; }
  std::size_t n_synapses() const { return in_.syn.size() + cx_.syn.size(); }

  // State of one trial: current, voltage, refractory counter and the delay ring buffer of pending
  // synaptic input (join / total are per-step scratch).
  struct State {
    std::vector<std::int64_t> u, v, join, total;
    std::vector<std::int32_t> ref;
    std::vector<std::int64_t> acc;  // delay ring buffer [ring][width]: slot-major, lanes side by side
  };
  // The whole simulation state: every trial, and the absolute step t (the ring buffer is indexed by
  // t mod ring_size, so t is part of the state).
  struct Snapshot {
    std::int64_t t = 0;
    std::vector<State> trials;
  };

  // Trials side by side in double lanes (rule sets with kTrialLanes): on by default; off runs every
  // trial through the scalar step. The two give the same bits (tested); the switch exists for that test.
  void set_trial_lanes(bool on) { trial_lanes_ = on; }
  static constexpr int kLanes = 8;

  std::size_t ring_size() const { return ring_; }
  std::size_t acc_width() const { return width_; }

  // ---- stateful interface (as the float engine): run() continues from the held state
  void init_state(std::int64_t trials) {
    if (trials < 1) throw std::invalid_argument("trials must be >= 1");
    state_.t = 0;
    state_.trials.assign(static_cast<std::size_t>(trials), make_state());
    u_wraps_total_.assign(n_, 0);
    v_saturations_total_.assign(n_, 0);
  }
  void reset_state() {
    state_.t = 0;
    state_.trials.clear();
    u_wraps_total_.assign(n_, 0);
    v_saturations_total_.assign(n_, 0);
  }
  // Per compartment, summed over trials, since init_state: steps whose u wrapped / v saturated.
  const std::vector<std::uint64_t>& u_wraps_total() const { return u_wraps_total_; }
  const std::vector<std::uint64_t>& v_saturations_total() const { return v_saturations_total_; }
  bool has_state() const { return !state_.trials.empty(); }
  std::int64_t n_trials() const { return static_cast<std::int64_t>(state_.trials.size()); }
  std::int64_t t() const { return state_.t; }
  const Snapshot& state() const { return state_; }
  // Replaces the state; throws std::invalid_argument if the arrays do not fit this network.
  void set_state(Snapshot s) {
    if (s.trials.empty()) throw std::invalid_argument("a state needs at least one trial");
    if (s.t < 0) throw std::invalid_argument("t must be >= 0");
    for (auto& st : s.trials) {
      if (st.u.size() != n_ || st.v.size() != n_ || st.ref.size() != n_ || st.acc.size() != ring_ * width_)
        throw std::invalid_argument("state arrays do not match this network (u, v, ref: " + std::to_string(n_) +
                                    ", acc: " + std::to_string(ring_ * width_) + " per trial)");
      for (std::size_t c = 0; c < n_; ++c) {
        detail::check_range("u", st.u[c], INT32_MIN, INT32_MAX);
        detail::check_range("v", st.v[c], -bits::kStateMax, bits::kStateMax);
        detail::check_range("ref", st.ref[c], 0, std::max(ref_delay_[c] - 1, 0));
      }
      st.join.assign(n_, 0);
      st.total.assign(n_, 0);
    }
    state_ = std::move(s);
  }
  // Simulates `steps` more steps of every held trial (inputs: [n_trials, steps, n_inputs] or null);
  // run(a) then run(b) gives bit for bit what run(a + b) gives. Does not depend on n_threads.
  RunOutput advance(std::int64_t steps, const std::uint8_t* inputs, const std::vector<std::int32_t>& record,
                    int n_threads = 1) {
    if (!has_state()) throw std::invalid_argument("no state: call init_state(trials) first");
    RunOutput out = simulate(&state_.trials, n_trials(), state_.t, steps, inputs, record, n_threads);
    state_.t += steps;
    u_wraps_total_.resize(n_, 0);
    v_saturations_total_.resize(n_, 0);
    for (std::size_t i = 0; i < out.u_wraps.size(); ++i) {
      u_wraps_total_[i % n_] += out.u_wraps[i];
      v_saturations_total_[i % n_] += out.v_saturations[i];
    }
    return out;
  }

  // ---- stateless interface: every trial starts from the zero state at t = 0 (the held state is
  // not touched). inputs: [trials, steps, n_inputs] spikes (nonzero = spike), or null for none.
  // record: the compartments whose u and v are recorded (ascending; empty: none). Trials are
  // independent and spread over n_threads threads; the
  // result does not depend on n_threads.
  RunOutput run(std::int64_t steps, std::int64_t trials, const std::uint8_t* inputs,
               const std::vector<std::int32_t>& record, int n_threads = 1) const {
    if (trials < 1) throw std::invalid_argument("trials must be >= 1");
    return simulate(nullptr, trials, 0, steps, inputs, record, n_threads);
  }
  // record_all: u and v of every compartment (or none)
  RunOutput run(std::int64_t steps, std::int64_t trials, const std::uint8_t* inputs, bool record_all,
                int n_threads = 1) const {
    return run(steps, trials, inputs, every_compartment(record_all), n_threads);
  }
  RunOutput advance(std::int64_t steps, const std::uint8_t* inputs, bool record_all, int n_threads = 1) {
    return advance(steps, inputs, every_compartment(record_all), n_threads);
  }
  std::vector<std::int32_t> every_compartment(bool on) const {
    std::vector<std::int32_t> r(on ? n_ : 0);
    for (std::size_t c = 0; c < r.size(); ++c) r[c] = static_cast<std::int32_t>(c);
    return r;
  }

 private:
  // states: the trials' states, advanced in place; null: every trial from the zero state, with one
  // scratch state per thread (no per-trial state is kept).
  RunOutput simulate(std::vector<State>* states, std::int64_t trials, std::int64_t t0, std::int64_t steps,
                     const std::uint8_t* inputs, const std::vector<std::int32_t>& record, int n_threads) const {
    if (steps < 0) throw std::invalid_argument("steps must be >= 0");
    if (n_threads < 1) throw std::invalid_argument("n_threads must be >= 1");
    RunOutput out;
    const std::size_t total = static_cast<std::size_t>(trials * steps) * n_;
    out.spikes.assign(total, 0);
    out.u_wraps.assign(static_cast<std::size_t>(trials) * n_, 0);
    out.v_saturations.assign(static_cast<std::size_t>(trials) * n_, 0);
    for (const std::int32_t c : record)
      if (c < 0 || static_cast<std::size_t>(c) >= n_) throw std::invalid_argument("record: compartment index out of range");
    if (!record.empty()) {
      const std::size_t rec_total = static_cast<std::size_t>(trials * steps) * record.size();
      out.u.assign(rec_total, 0);
      out.v.assign(rec_total, 0);
    }
    auto work = [&](std::int64_t b0, std::int64_t b1, Tally& tally) {
#if AHPSIM_LOIHI_LANES
      if constexpr (Rules::kTrialLanes) {  // up to kLanes trials side by side
        if (trial_lanes_ && lanes_ok_ && b1 - b0 >= 2) {
          Lanes lanes = make_lanes();
          while (b1 - b0 >= 2) {
            const int nb = static_cast<int>(std::min<std::int64_t>(kLanes, b1 - b0));
            if (!run_lanes(lanes, states, b0, nb, t0, steps, inputs, record, out, tally)) break;
            b0 += nb;
          }
        }
      }
#endif
      if (states) {
        for (std::int64_t b = b0; b < b1; ++b)
          run_trial((*states)[static_cast<std::size_t>(b)], b, t0, steps, inputs, record, out, tally);
      } else {
        State st = make_state();
        for (std::int64_t b = b0; b < b1; ++b) {
          if (b > b0) clear(st);
          run_trial(st, b, t0, steps, inputs, record, out, tally);
        }
      }
    };
    const std::int64_t nt = std::max<std::int64_t>(1, std::min<std::int64_t>(n_threads, trials));
    std::vector<Tally> tallies(static_cast<std::size_t>(nt), Tally{std::vector<std::uint64_t>(n_, 0),
                                                                     std::vector<std::uint64_t>(static_cast<std::size_t>(n_in_), 0)});
    if (nt <= 1) {
      work(0, trials, tallies[0]);
    } else {
      std::vector<std::thread> pool;
      std::vector<std::exception_ptr> errors(static_cast<std::size_t>(nt));
      for (std::int64_t k = 0; k < nt; ++k) {
        pool.emplace_back([&, k] {
          try {
            work(trials * k / nt, trials * (k + 1) / nt, tallies[static_cast<std::size_t>(k)]);
          } catch (...) {
            errors[static_cast<std::size_t>(k)] = std::current_exception();
          }
        });
      }
      for (auto& th : pool) th.join();
      for (auto& e : errors)
        if (e) std::rethrow_exception(e);
    }
    out.spike_counts = std::move(tallies[0].spikes);
    out.input_counts = std::move(tallies[0].inputs);
    for (std::size_t k = 1; k < tallies.size(); ++k) {
      for (std::size_t c = 0; c < n_; ++c) out.spike_counts[c] += tallies[k].spikes[c];
      for (std::size_t m = 0; m < out.input_counts.size(); ++m) out.input_counts[m] += tallies[k].inputs[m];
    }
    return out;
  }

  struct Tally {  // one thread's spike counts: per compartment, per input channel
    std::vector<std::uint64_t> spikes, inputs;
  };

  struct Syn {  // one synapse while building
    std::int32_t offset;  // column in the accumulator: lane offset + post index within the lane
    std::int32_t weight;
    std::int32_t latency;
  };
  struct Target {  // one stored synapse
    std::int32_t offset, weight;
  };
  struct LaneTarget {  // the same synapse for the lanes: byte offset of its column, weight as a float
    std::uint32_t byte_offset;  // offset * kLanes * sizeof(double)
    float weight;               // exact: |weight| < 2^24 (checked in build)
  };
  struct Segment {  // synapses of one source with one latency: syn[begin, end)
    std::int32_t latency;
    std::uint32_t begin, end;
  };
  struct SourceTable {  // synapses grouped by source, then by latency
    std::vector<std::size_t> seg_ptr;  // segments of source i: [seg_ptr[i], seg_ptr[i + 1])
    std::vector<Segment> segs;
    std::vector<Target> syn;
  };
  struct Lane {
    std::int32_t start, n, exp, offset;  // post range, exponent, first accumulator column
  };
  void build(const NetworkSpec& s) {
    const auto& c = s.cx;
    n_ = c.size();
    n_in_ = s.n_inputs;
    du_.assign(c.du.begin(), c.du.end());
    dv_.assign(c.dv.begin(), c.dv.end());
    vth_.resize(n_);
    bias_.resize(n_);
    for (std::size_t i = 0; i < n_; ++i) {
      vth_[i] = static_cast<std::int64_t>(c.vth_mant[i]) << bits::kVthShift;
      bias_[i] = static_cast<std::int64_t>(c.bias_mant[i]) * (std::int64_t{1} << c.bias_exp[i]);
    }
    mu_.resize(n_);
    mv_.resize(n_);
    for (std::size_t i = 0; i < n_; ++i) {  // decay factors of the lanes: (4096 - d) / 4096, exact
      mu_[i] = static_cast<double>(bits::kDecayUnity - c.du[i]) / static_cast<double>(bits::kDecayUnity);
      mv_[i] = static_cast<double>(bits::kDecayUnity - c.dv[i]) / static_cast<double>(bits::kDecayUnity);
    }
    ref_delay_ = c.refractory;
    spiking_ = c.spiking;
    parent_ = c.parent;
    has_parent_ = std::any_of(parent_.begin(), parent_.end(), [](std::int32_t p) { return p >= 0; });
    has_refractory_ = std::any_of(ref_delay_.begin(), ref_delay_.end(), [](std::int32_t r) { return r > 1; });

    // lanes: one per projection when the exponent acts on the summed input, else one in all
    if (Rules::kExponentOnSum) {
      for (const auto& p : s.projections) {
        lanes_.push_back({p.post_start, p.n_post, p.weight_exp, static_cast<std::int32_t>(width_)});
        width_ += static_cast<std::size_t>(p.n_post);
      }
    } else {
      lanes_.push_back({0, static_cast<std::int32_t>(n_), 0, 0});
      width_ = n_;
    }
    int max_lat = 1;
    std::vector<std::vector<Syn>> by_in(static_cast<std::size_t>(n_in_)), by_cx(n_);
    for (std::size_t k = 0; k < s.projections.size(); ++k) {
      const auto& p = s.projections[k];
      const std::int32_t post_off = Rules::kExponentOnSum ? lanes_[k].offset : p.post_start;
      const int base_lat = p.from_input ? Rules::kInputLatency : Rules::kRecurrentLatency;
      for (std::size_t e = 0; e < p.pre.size(); ++e) {
        const std::int64_t w = Rules::synapse_weight(p.weight[e], p.weight_exp);
        if (w == 0) continue;
        Syn sy{post_off + p.post[e], static_cast<std::int32_t>(w), base_lat + p.delay[e]};
        max_lat = std::max(max_lat, static_cast<int>(sy.latency));
        auto& dst = p.from_input ? by_in[static_cast<std::size_t>(p.pre_start + p.pre[e])]
                                 : by_cx[static_cast<std::size_t>(p.pre_start + p.pre[e])];
        dst.push_back(sy);
      }
    }
    ring_ = 1;
    while (ring_ < static_cast<std::size_t>(max_lat) + 1) ring_ <<= 1;
    flatten(by_in, in_);
    flatten(by_cx, cx_);
    lanes_ok_ = lane_table(in_, in_lanes_) && lane_table(cx_, cx_lanes_);
  }

  static void flatten(std::vector<std::vector<Syn>>& by, SourceTable& tab) {
    tab.seg_ptr.assign(by.size() + 1, 0);
    for (std::size_t i = 0; i < by.size(); ++i) {
      auto& v = by[i];
      std::stable_sort(v.begin(), v.end(), [](const Syn& a, const Syn& b) { return a.latency < b.latency; });
      for (std::size_t k = 0; k < v.size(); ++k) {
        if (k == 0 || v[k].latency != v[k - 1].latency) {
          const auto at = static_cast<std::uint32_t>(tab.syn.size());
          tab.segs.push_back({v[k].latency, at, at});
        }
        tab.syn.push_back({v[k].offset, v[k].weight});
        tab.segs.back().end = static_cast<std::uint32_t>(tab.syn.size());
      }
      tab.seg_ptr[i + 1] = tab.segs.size();
    }
  }

  // The lanes' copy of a synapse table; false if a weight or an offset does not fit it.
  static bool lane_table(const SourceTable& tab, std::vector<LaneTarget>& out) {
    out.resize(tab.syn.size());
    for (std::size_t i = 0; i < tab.syn.size(); ++i) {
      const std::int64_t w = tab.syn[i].weight, off = std::int64_t{tab.syn[i].offset} * kLanes * 8;
      if (w >= (std::int64_t{1} << 24) || w <= -(std::int64_t{1} << 24) || off > UINT32_MAX) return false;
      out[i] = {static_cast<std::uint32_t>(off), static_cast<float>(w)};
    }
    return true;
  }

  State make_state() const {
    State st;
    st.u.assign(n_, 0);
    st.v.assign(n_, 0);
    st.join.assign(n_, 0);
    st.total.assign(n_, 0);
    st.ref.assign(n_, 0);
    st.acc.assign(ring_ * width_, 0);
    return st;
  }
  void clear(State& st) const {
    std::fill(st.u.begin(), st.u.end(), 0);
    std::fill(st.v.begin(), st.v.end(), 0);
    std::fill(st.ref.begin(), st.ref.end(), 0);
    std::fill(st.acc.begin(), st.acc.end(), 0);
  }

  void run_trial(State& st, std::int64_t b, std::int64_t t0, std::int64_t steps, const std::uint8_t* inputs,
                 const std::vector<std::int32_t>& record, RunOutput& out, Tally& tally) const {
    const std::uint8_t* x = inputs ? inputs + static_cast<std::size_t>(b * steps) * n_in_ : nullptr;
    const std::size_t base = static_cast<std::size_t>(b * steps) * n_;
    Overflows ov{out.u_wraps.data() + static_cast<std::size_t>(b) * n_,
                 out.v_saturations.data() + static_cast<std::size_t>(b) * n_};
    for (std::int64_t t = 0; t < steps; ++t) {
      const std::size_t o = base + static_cast<std::size_t>(t) * n_;
      step(st, t0 + t, x ? x + static_cast<std::size_t>(t) * n_in_ : nullptr, out.spikes.data() + o, ov, tally);
      if (!record.empty()) {  // [trials, steps, record.size()]
        const std::size_t r0 = (static_cast<std::size_t>(b * steps) + static_cast<std::size_t>(t)) * record.size();
        for (std::size_t k = 0; k < record.size(); ++k) {
          out.u[r0 + k] = static_cast<std::int32_t>(st.u[static_cast<std::size_t>(record[k])]);
          out.v[r0 + k] = static_cast<std::int32_t>(st.v[static_cast<std::size_t>(record[k])]);
        }
      }
    }
  }

  void deliver(State& st, const SourceTable& tab, std::size_t src, std::int64_t t) const {
    const std::size_t mask = ring_ - 1;
    const Target* syn = tab.syn.data();
    for (std::size_t k = tab.seg_ptr[src]; k < tab.seg_ptr[src + 1]; ++k) {
      const Segment& sg = tab.segs[k];
      std::int64_t* row = st.acc.data() + (static_cast<std::size_t>(t + sg.latency) & mask) * width_;
      for (std::uint32_t i = sg.begin; i < sg.end; ++i) row[syn[i].offset] += syn[i].weight;
    }
  }

#if AHPSIM_LOIHI_LANES
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"  // 32-byte vectors pass between always-inline helpers only
#endif
  // ---- trials side by side: state [compartment][lane] in doubles (exact: every value is an integer
  // below 2^53, see rules.hpp), so that the compartment update runs over kLanes trials at once.
  struct Lanes {
    std::vector<double> u, v, join, ref;         // [n][kLanes]
    std::vector<std::uint32_t> fired;            // this step's spikes: (compartment, lane bits) pairs
    std::vector<double> acc;                     // [ring][width][kLanes]
  };
  Lanes make_lanes() const {
    Lanes L;
    const std::size_t nk = n_ * kLanes;
    L.u.assign(nk, 0.0);
    L.v.assign(nk, 0.0);
    L.join.assign(nk, 0.0);
    L.ref.assign(nk, 0.0);
    L.fired.assign(2 * n_ + 2, 0);
    L.acc.assign(ring_ * width_ * kLanes, 0.0);
    return L;
  }
  // Runs trials [b0, b0 + nb) (nb <= kLanes; unused lanes idle from the zero state). Returns false,
  // touching nothing, when a held state is outside the lanes' exact range (|pending input| >= 2^52).
  bool run_lanes(Lanes& L, std::vector<State>* states, std::int64_t b0, int nb, std::int64_t t0,
                 std::int64_t steps, const std::uint8_t* inputs, const std::vector<std::int32_t>& record,
                 RunOutput& out, Tally& tally) const {
    constexpr std::int64_t kExact = std::int64_t{1} << 52;
    if (states) {
      for (int l = 0; l < nb; ++l)
        for (const std::int64_t a : (*states)[static_cast<std::size_t>(b0 + l)].acc)
          if (a >= kExact || a <= -kExact) return false;
    }
    std::fill(L.u.begin(), L.u.end(), 0.0);
    std::fill(L.v.begin(), L.v.end(), 0.0);
    std::fill(L.ref.begin(), L.ref.end(), 0.0);
    std::fill(L.acc.begin(), L.acc.end(), 0.0);
    if (states) {
      for (int l = 0; l < nb; ++l) {
        const State& st = (*states)[static_cast<std::size_t>(b0 + l)];
        for (std::size_t c = 0; c < n_; ++c) {
          L.u[c * kLanes + l] = static_cast<double>(st.u[c]);
          L.v[c * kLanes + l] = static_cast<double>(st.v[c]);
          L.ref[c * kLanes + l] = static_cast<double>(st.ref[c]);
        }
        for (std::size_t k = 0; k < st.acc.size(); ++k) L.acc[k * kLanes + l] = static_cast<double>(st.acc[k]);
      }
    }
#if AHPSIM_LOIHI_AVX2
    if (cpu_has_avx2())
      steps_lanes_avx2(L, b0, nb, t0, steps, inputs, record, out, tally);
    else
#endif
      for (std::int64_t t = 0; t < steps; ++t) {
        if (has_refractory_)
          step_lanes<false, true>(L, b0, nb, t0 + t, t, steps, inputs, record, out, tally);
        else
          step_lanes<false, false>(L, b0, nb, t0 + t, t, steps, inputs, record, out, tally);
      }
    if (states) {
      for (int l = 0; l < nb; ++l) {
        State& st = (*states)[static_cast<std::size_t>(b0 + l)];
        for (std::size_t c = 0; c < n_; ++c) {
          st.u[c] = static_cast<std::int64_t>(L.u[c * kLanes + l]);
          st.v[c] = static_cast<std::int64_t>(L.v[c * kLanes + l]);
          st.ref[c] = static_cast<std::int32_t>(L.ref[c * kLanes + l]);
        }
        for (std::size_t k = 0; k < st.acc.size(); ++k) st.acc[k] = static_cast<std::int64_t>(L.acc[k * kLanes + l]);
      }
    }
    return true;
  }

  // syn: the lanes' copy of tab's synapses (byte offsets and float weights: fewer instructions per event)
  void deliver_lane(Lanes& L, const SourceTable& tab, const LaneTarget* syn, std::size_t src, std::int64_t t,
                    int l) const {
    const std::size_t mask = ring_ - 1;
    for (std::size_t k = tab.seg_ptr[src]; k < tab.seg_ptr[src + 1]; ++k) {
      const Segment& sg = tab.segs[k];
      char* row = reinterpret_cast<char*>(L.acc.data() + (static_cast<std::size_t>(t + sg.latency) & mask) * width_ * kLanes + l);
      for (std::uint32_t i = sg.begin; i < sg.end; ++i)
        *reinterpret_cast<double*>(row + syn[i].byte_offset) += static_cast<double>(syn[i].weight);
    }
  }

  using v4d = double __attribute__((vector_size(32)));     // 4 lanes
  using v4m = long long __attribute__((vector_size(32)));  // lane masks (0 or -1)
  using v4i = std::int32_t __attribute__((vector_size(16)));
  static AHPSIM_LOIHI_ALWAYS_INLINE v4d load4(const double* p) {
    v4d x;
    std::memcpy(&x, p, sizeof x);
    return x;
  }
  static AHPSIM_LOIHI_ALWAYS_INLINE void store4(double* p, v4d x) { std::memcpy(p, &x, sizeof x); }
  // rounded toward zero (AVX2 with GCC: vroundpd; else the conversion truncates), exact for |x| < 2^31
  template <bool kAvx2>
  static AHPSIM_LOIHI_ALWAYS_INLINE v4d trunc31(v4d x) {
#if AHPSIM_LOIHI_AVX2 && !defined(__clang__)
    if constexpr (kAvx2) return __builtin_ia32_roundpd256(x, 3);  // vroundpd toward zero: one instruction, not two
#endif
    return __builtin_convertvector(__builtin_convertvector(x, v4i), v4d);
  }
  static AHPSIM_LOIHI_ALWAYS_INLINE v4d select(v4m m, v4d a, v4d b) {
    v4m ai, bi;
    std::memcpy(&ai, &a, sizeof a);
    std::memcpy(&bi, &b, sizeof b);
    const v4m r = (ai & m) | (bi & ~m);
    v4d out;
    std::memcpy(&out, &r, sizeof r);
    return out;
  }
  using v2m = long long __attribute__((vector_size(16)));
  // OR of the four lanes, folded in halves (one 128-bit OR instead of four extractions)
  static AHPSIM_LOIHI_ALWAYS_INLINE long long fold_or(v4m m) {
    v2m lo, hi;
    std::memcpy(&lo, &m, sizeof lo);
    std::memcpy(&hi, reinterpret_cast<const char*>(&m) + sizeof lo, sizeof hi);
    const v2m o = lo | hi;
    return o[0] | o[1];
  }
  // Bit k set where lane k of m is set (m: 0 or -1 per lane).
  template <bool kAvx2>
  static AHPSIM_LOIHI_ALWAYS_INLINE unsigned lane_mask(v4m m) {
#if AHPSIM_LOIHI_AVX2 && !defined(__clang__)
    // GCC expands the builtin in the AVX2 function this is inlined into (Clang checks the target of
    // the function that names it, and takes the generic fold)
    if constexpr (kAvx2) {  // the sign bits of the four lanes in one instruction (vmovmskpd)
      v4d d;
      std::memcpy(&d, &m, sizeof d);
      return static_cast<unsigned>(__builtin_ia32_movmskpd256(d));
    }
#endif
    const v4m bit = {1, 2, 4, 8};
    return static_cast<unsigned>(fold_or(m & bit));
  }

#if AHPSIM_LOIHI_AVX2
  __attribute__((target("avx2"))) void steps_lanes_avx2(Lanes& L, std::int64_t b0, int nb, std::int64_t t0,
                                                        std::int64_t steps, const std::uint8_t* inputs,
                                                        const std::vector<std::int32_t>& record,
                                                        RunOutput& out, Tally& tally) const {
    if (has_refractory_) {
      for (std::int64_t t = 0; t < steps; ++t) step_lanes<true, true>(L, b0, nb, t0 + t, t, steps, inputs, record, out, tally);
    } else {
      for (std::int64_t t = 0; t < steps; ++t) step_lanes<true, false>(L, b0, nb, t0 + t, t, steps, inputs, record, out, tally);
    }
  }
#endif

  // One step of the lanes: the scalar step() in lanes (same order of operations, same integers).
  // kRefractory false: no compartment has a refractory delay above 1, so the counters stay 0 (not read).
  template <bool kAvx2, bool kRefractory>
  AHPSIM_LOIHI_ALWAYS_INLINE void step_lanes(Lanes& L, std::int64_t b0, int nb, std::int64_t t, std::int64_t tl,
                                             std::int64_t steps, const std::uint8_t* inputs,
                                             const std::vector<std::int32_t>& record, RunOutput& out,
                                             Tally& tally) const {
    constexpr int K = kLanes;
    static_assert(K % 4 == 0, "lanes come in vectors of 4");
    // 1. external input of step t
    if (inputs) {
      for (int l = 0; l < nb; ++l) {
        const std::uint8_t* x = inputs + (static_cast<std::size_t>((b0 + l) * steps + tl)) * n_in_;
        detail::for_each_nonzero(x, n_in_, [&](std::int32_t m) {
          deliver_lane(L, in_, in_lanes_.data(), static_cast<std::size_t>(m), t, l);
          ++tally.inputs[static_cast<std::size_t>(m)];
        });
      }
    }
    // 2. compartments in index order; the slot of step t is read and cleared
    double* AHPSIM_LOIHI_RESTRICT row = L.acc.data() + (static_cast<std::size_t>(t) & (ring_ - 1)) * width_ * K;
    double* AHPSIM_LOIHI_RESTRICT U = L.u.data();
    double* AHPSIM_LOIHI_RESTRICT V = L.v.data();
    double* AHPSIM_LOIHI_RESTRICT J = L.join.data();
    double* AHPSIM_LOIHI_RESTRICT R = L.ref.data();
    std::uint32_t* AHPSIM_LOIHI_RESTRICT fired = L.fired.data();
    std::size_t n_fired = 0;
    const bool has_parent = has_parent_;
    if (has_parent) std::fill(L.join.begin(), L.join.end(), 0.0);
    const double lim = static_cast<double>(std::int64_t{1} << (bits::kStateBits - 1));  // 2^23
    const double smax = static_cast<double>(bits::kStateMax);
    const v4d zero = {0.0, 0.0, 0.0, 0.0};
    for (std::size_t c = 0; c < n_; ++c) {
      const double mu = mu_[c], mv = mv_[c], bias = static_cast<double>(bias_[c]);
      const double vth = static_cast<double>(vth_[c]), ref1 = static_cast<double>(ref_delay_[c] - 1);
      const v4m spiking = spiking_[c] ? ~v4m{} : v4m{};
      v4m clip_any = {};
      v4m fire[K / 4], clip[K / 4];
      for (int q = 0; q < K / 4; ++q) {
        const std::size_t at = c * K + 4 * q;
        v4d x = trunc31<kAvx2>(load4(U + at) * mu) + load4(row + at);
        store4(row + at, zero);
        const v4m wrap = (x >= lim) | (x < -lim);
        if (lane_mask<kAvx2>(wrap)) {  // rare: two's-complement wrap at 24 bits, counted per trial
          for (int k = 0; k < 4; ++k) {
            const std::int64_t raw = static_cast<std::int64_t>(x[k]);
            const std::int64_t w = bits::wrap_bits(raw, bits::kStateBits);
            if (w != raw) {
              x[k] = static_cast<double>(w);
              if (4 * q + k < nb) ++out.u_wraps[static_cast<std::size_t>(b0 + 4 * q + k) * n_ + c];
            }
          }
        }
        store4(U + at, x);
        const v4d vraw = trunc31<kAvx2>(load4(V + at) * mv) + x + load4(J + at) + bias;
        const v4d vs = select(vraw > smax, zero + smax, select(vraw < -smax, zero - smax, vraw));
        const v4d r = kRefractory ? load4(R + at) : zero;
        v4m inref = {};
        if constexpr (kRefractory) inref = r > 0.0;
        fire[q] = spiking & ~inref & (vs > vth);
        clip[q] = (vs != vraw) & ~inref;  // clipped outside refractoriness
        clip_any |= clip[q];
        const v4d v = select(inref | fire[q], zero, vs);  // held at 0 while refractory, 0 after a spike
        store4(V + at, v);
        if constexpr (kRefractory) store4(R + at, select(inref, r - 1.0, select(fire[q], zero + ref1, zero)));
        if (has_parent && parent_[c] >= 0) {
          double* pj = J + static_cast<std::size_t>(parent_[c]) * K + 4 * q;
          store4(pj, load4(pj) + v);
        }
      }
      if (lane_mask<kAvx2>(clip_any)) {  // rare: counted per trial
        for (int l = 0; l < nb; ++l)
          if (clip[l / 4][l % 4]) ++out.v_saturations[static_cast<std::size_t>(b0 + l) * n_ + c];
      }
      // compartments with a spike in any lane, as (index, lane bits), appended without a branch
      std::uint32_t lane_bits = 0;
      for (int q = 0; q < K / 4; ++q) lane_bits |= lane_mask<kAvx2>(fire[q]) << (4 * q);
      fired[2 * n_fired] = static_cast<std::uint32_t>(c);
      fired[2 * n_fired + 1] = lane_bits;
      n_fired += lane_bits != 0;
    }
    // 3. spikes of step t: written out and delivered (idle lanes, the high bits, are dropped)
    const std::uint32_t live = nb >= 32 ? ~0u : ((1u << nb) - 1u);
    for (std::size_t k = 0; k < n_fired; ++k) {
      const std::size_t c = fired[2 * k];
      for (std::uint32_t m = fired[2 * k + 1] & live; m != 0; m &= m - 1) {
        const int l = __builtin_ctz(m);
        out.spikes[(static_cast<std::size_t>((b0 + l) * steps + tl)) * n_ + c] = 1;
        deliver_lane(L, cx_, cx_lanes_.data(), c, t, l);
        ++tally.spikes[c];
      }
    }
    if (!record.empty()) {
      for (int l = 0; l < nb; ++l) {
        const std::size_t r0 = static_cast<std::size_t>((b0 + l) * steps + tl) * record.size();
        for (std::size_t k = 0; k < record.size(); ++k) {
          const std::size_t at = static_cast<std::size_t>(record[k]) * K + l;
          out.u[r0 + k] = static_cast<std::int32_t>(U[at]);
          out.v[r0 + k] = static_cast<std::int32_t>(V[at]);
        }
      }
    }
  }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif  // AHPSIM_LOIHI_LANES

  struct Overflows {
    std::uint32_t* u_wraps;  // [n] of this trial
    std::uint32_t* v_saturations;
  };

  void step(State& st, std::int64_t t, const std::uint8_t* x, std::uint8_t* spk, Overflows ov, Tally& tally) const {
    // 1. external input of step t
    if (x) {
      detail::for_each_nonzero(x, n_in_, [&](std::int32_t m) {
        deliver(st, in_, static_cast<std::size_t>(m), t);
        ++tally.inputs[static_cast<std::size_t>(m)];
      });
    }
    // 2a. activation delivered for step t (its ring slot is cleared as it is read)
    const std::size_t slot = static_cast<std::size_t>(t) & (ring_ - 1);
    std::int64_t* AHPSIM_LOIHI_RESTRICT row = st.acc.data() + slot * width_;
    if (Rules::kExponentOnSum) {
      std::fill(st.total.begin(), st.total.end(), 0);
      for (const Lane& ln : lanes_) {
        std::int64_t* a = row + ln.offset;
        std::int64_t* tot = st.total.data() + ln.start;
        for (std::int32_t j = 0; j < ln.n; ++j)
          tot[j] = bits::wrap32(tot[j] + Rules::projection_output(a[j], ln.exp));
      }
      std::fill(row, row + width_, 0);
    }
    // 2b. compartments in index order (children before parents)
    std::int64_t* AHPSIM_LOIHI_RESTRICT u_s = st.u.data();
    std::int64_t* AHPSIM_LOIHI_RESTRICT v_s = st.v.data();
    std::int64_t* AHPSIM_LOIHI_RESTRICT join = st.join.data();
    std::int32_t* AHPSIM_LOIHI_RESTRICT ref = st.ref.data();
    const std::int64_t* AHPSIM_LOIHI_RESTRICT total = st.total.data();
    const std::int64_t* AHPSIM_LOIHI_RESTRICT du = du_.data();
    const std::int64_t* AHPSIM_LOIHI_RESTRICT dv = dv_.data();
    const std::int64_t* AHPSIM_LOIHI_RESTRICT vth = vth_.data();
    const std::int64_t* AHPSIM_LOIHI_RESTRICT bias = bias_.data();
    const std::int32_t* AHPSIM_LOIHI_RESTRICT ref_delay = ref_delay_.data();
    const std::uint8_t* AHPSIM_LOIHI_RESTRICT spiking = spiking_.data();
    const std::int32_t* AHPSIM_LOIHI_RESTRICT parent = parent_.data();
    std::uint32_t* AHPSIM_LOIHI_RESTRICT u_wraps = ov.u_wraps;
    std::uint32_t* AHPSIM_LOIHI_RESTRICT v_sats = ov.v_saturations;
    const bool has_parent = has_parent_;
    const std::size_t n = n_;
    if (has_parent) std::fill(join, join + n, 0);
    for (std::size_t c = 0; c < n; ++c) {
      std::int64_t in;
      if (Rules::kExponentOnSum) {
        in = total[c];
      } else {  // one lane: the slot's column c is the input, read once and cleared
        in = row[c];
        row[c] = 0;
      }
      const std::int64_t u_raw = Rules::u_unwrapped(u_s[c], du[c], Rules::activation(in));
      const std::int64_t u = Rules::wrap_u(u_raw);
      if (u != u_raw) ++u_wraps[c];  // rare: a branch, not a store every step
      u_s[c] = u;
      std::int64_t v;
      std::uint8_t fired = 0;
      if (ref[c] > 0) {
        --ref[c];
        v = 0;
      } else {
        const std::int64_t v_raw = Rules::decay_v(v_s[c], dv[c]) + u + (has_parent ? join[c] : 0) + bias[c];
        v = bits::saturate(v_raw, -bits::kStateMax, bits::kStateMax);
        if (v != v_raw) ++v_sats[c];
        if (spiking[c] && v > vth[c]) {
          fired = 1;
          v = 0;
          ref[c] = ref_delay[c] - 1;
        }
      }
      v_s[c] = v;
      spk[c] = fired;
      if (has_parent && parent[c] >= 0) join[static_cast<std::size_t>(parent[c])] += v;
    }
    // 3. spikes of step t
    for (std::size_t c = 0; c < n_; ++c)
      if (spk[c]) {
        deliver(st, cx_, c, t);
        ++tally.spikes[c];
      }
  }

  std::size_t n_ = 0;
  std::int32_t n_in_ = 0;
  std::vector<std::int64_t> du_, dv_, vth_, bias_;
  std::vector<double> mu_, mv_;  // (4096 - du) / 4096, (4096 - dv) / 4096: the lanes' decay factors
  bool trial_lanes_ = true;
  std::vector<std::int32_t> ref_delay_, parent_;
  std::vector<std::uint8_t> spiking_;
  bool has_parent_ = false;
  bool has_refractory_ = false;  // some compartment's refractory delay is above 1
  std::vector<Lane> lanes_;
  std::size_t ring_ = 2;
  std::size_t width_ = 0;  // accumulator columns (sum of lane sizes)
  SourceTable in_, cx_;  // synapses of the input channels / of the compartments
  std::vector<LaneTarget> in_lanes_, cx_lanes_;  // their copies for the lanes
  bool lanes_ok_ = true;                         // every synapse fits a LaneTarget
  Snapshot state_;       // held state of the stateful interface (no trials: none yet)
  std::vector<std::uint64_t> u_wraps_total_, v_saturations_total_;  // [n], since init_state
};

}  // namespace ahpsim::loihi
