// The float engine: a Network owns its groups, projections, drives and the state of B independent
// trials. No global state; everything lives in the object.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ahpsim/models.hpp"
#include "ahpsim/projection.hpp"
#include "ahpsim/rng.hpp"

namespace ahpsim {

struct InputGroup {
  std::string name;
  std::uint32_t n = 0;
  double poisson_rate_hz = 0.0;  // > 0: spikes drawn each step per trial, no external data
  bool is_poisson() const { return poisson_rate_hz > 0.0; }
};

struct Population {
  std::string name;
  std::uint32_t start = 0, n = 0;  // global neuron indices [start, start + n)
  PopulationParams params;
};

// Independent Poisson spike counts into every neuron of a population (NEST's poisson_generator
// connected one-to-all: each target gets its own train). Adds weight * k with k ~ Poisson(rate*dt).
struct PoissonDrive {
  std::uint32_t pop = 0;
  double rate_hz = 0.0;
  double weight = 0.0;
};

// External input of one input group for one run: per (trial, step) a list of (channel, value).
template <class Real>
// Either events (ptr/channel/value) or a dense array [n_batch, T, n_channels] of spikes
// (dense_spikes, 0/1 bytes) or values (dense_value); nonzero entries are delivered in channel order,
// as the events of one step are.
struct InputEvents {
  std::uint32_t group = 0;
  std::uint32_t n_batch = 1;          // 1: the same input for every trial
  const std::int64_t* ptr = nullptr;  // [n_batch * (T + 1)] offsets into channel/value
  const std::int32_t* channel = nullptr;
  const Real* value = nullptr;
  const std::uint8_t* dense_spikes = nullptr;
  const Real* dense_value = nullptr;
  std::uint32_t n_channels = 0;
  bool dense() const { return dense_spikes != nullptr || dense_value != nullptr; }
};

struct RecordSpec {
  std::vector<std::uint8_t> spikes_of_pop;  // per population: record its spikes
  std::vector<std::uint32_t> state_ids;     // global neuron ids whose v and aux are traced
  bool readouts = true;                     // trace every readout neuron's y
};

struct TrialSpikes {
  std::vector<std::int64_t> step;  // absolute step of each spike
  std::vector<std::uint32_t> id;   // global neuron index
};

template <class Real>
struct RunOutput {
  std::vector<TrialSpikes> spikes;       // [B]
  std::vector<Real> v_trace, aux_trace;  // [B, T, n_state_ids]
  std::vector<Real> y_trace;             // [B, T, n_readout_neurons]
};

struct Counters {
  std::uint64_t spikes = 0;          // spikes of spiking neurons
  std::uint64_t syn_events = 0;      // spikes delivered through synapses (one per synapse)
  std::uint64_t input_events = 0;    // nonzero input values delivered through synapses
  std::uint64_t drive_events = 0;    // Poisson drive events
  std::uint64_t neuron_updates = 0;  // neuron-steps (spiking and readout)
};

// Neurons are grouped in blocks with their own random streams, so that a trial split over a team of
// threads draws the same numbers whatever the team size.
constexpr std::uint32_t kRngBlock = 1024;
// Poisson drives whose CDF has at most this many thresholds below 1 (means up to about 12 per step)
// are sampled by comparing a uniform with every threshold; longer ones by a guide-table lookup.
constexpr std::size_t kMaxCompareThresholds = 40;

// An input delivery of an exchange window whose synapses reach beyond the window: replayed, in
// order, by deliver_exchanged (so that every ring slot sums its inputs in the one-process order).
template <class Real>
struct DeferredInput {
  std::int64_t step;
  std::uint32_t group, channel;
  Real x;
};

template <class Real>
struct TrialState {
  std::vector<Real> v, aux;         // [N]
  std::vector<std::int32_t> refr;   // [N]
  std::vector<std::uint8_t> z;      // [N]
  std::vector<Real> ring;           // [S * N] delay ring buffer of input currents
  Rng rng;                          // Poisson input groups
  std::vector<Rng4> block_rng;      // Poisson drives: four streams per block of kRngBlock neurons
  Counters counters;
  std::vector<DeferredInput<Real>> deferred;  // exchange mode: this window's later input deliveries
};

template <class Real>
struct Snapshot {
  std::int64_t t = 0;
  std::uint32_t n_neurons = 0, ring_slots = 0;
  std::vector<TrialState<Real>> trials;
};

template <class Real>
class Network {
 public:
  explicit Network(double dt = 1.0, std::uint64_t seed = 0);

  // ---- building (only while there is no simulation state) ----
  std::uint32_t add_input(const std::string& name, std::uint32_t n, double poisson_rate_hz = 0.0);
  std::uint32_t add_population(const std::string& name, std::uint32_t n, PopulationParams params);
  // Connection list: local indices, per-synapse weights and delays (steps). Returns projection index.
  std::uint32_t connect(bool pre_is_input, std::uint32_t pre, std::uint32_t post, std::uint64_t n_syn,
                        const std::uint32_t* pre_idx, const std::uint32_t* post_idx, const Real* weight,
                        const std::uint16_t* delay);
  // Random connectivity generated in C++ (for very large networks): every post neuron draws exactly
  // `indegree` sources (with replacement, autapses excluded when pre == post) -- NEST's fixed_indegree.
  std::uint32_t connect_fixed_indegree(bool pre_is_input, std::uint32_t pre, std::uint32_t post,
                                       std::uint32_t indegree, Real weight, std::uint16_t delay,
                                       std::uint64_t seed, bool allow_autapses);
  // Editing a projection: `weight` / `delay` hold one value per synapse in delivery order (the order
  // projections()[k] stores them). New weights may be set at any time (spikes already in the ring
  // buffers keep their old weights); new delays re-sort the synapses and need a network without state.
  void set_projection_weights(std::uint32_t k, std::uint64_t n, const Real* weight);
  void set_projection_delays(std::uint32_t k, std::uint64_t n, const std::uint16_t* delay);
  void add_poisson_drive(std::uint32_t pop, double rate_hz, double weight);
  void set_seed(std::uint64_t seed) { seed_ = seed; }

  // ---- state ----
  // allocate B trials at t = 0 (fresh state); trial k draws the random streams of trial first_trial + k
  void init_state(std::uint32_t n_trials, std::uint64_t first_trial = 0);
  void reset_state();                       // drop all state (structure is kept)
  bool has_state() const { return !trials_.empty(); }
  std::uint32_t n_trials() const { return static_cast<std::uint32_t>(trials_.size()); }
  std::int64_t t() const { return t_; }
  Snapshot<Real> snapshot() const;
  void restore(const Snapshot<Real>& s);
  // Copy of one state variable over all trials, [B * N]; "v", "aux", "refr", "z".
  std::vector<double> get_state(const std::string& var) const;
  void set_state(const std::string& var, const double* values, std::size_t size);
  Counters counters() const;  // summed over trials since init_state

  // ---- running ----
  // Runs T steps of all trials. With at least as many trials as threads, trials are spread over the
  // threads; otherwise each trial's neurons are split over a team. Results never depend on n_threads.
  RunOutput<Real> run(std::int64_t T, const std::vector<InputEvents<Real>>& inputs,
                                     const RecordSpec& rec, unsigned n_threads);

  // ---- one process of a partitioned network (ahpsim.Network(comm=...)) ----
  // This process owns neurons [lo, hi) (lo a multiple of kRngBlock: random-number blocks are never
  // split, so Poisson drives draw what one process draws); it updates only those, delivers only into
  // them, and connect_fixed_indegree stores only their synapses (drawing all, keeping the streams).
  void set_partition(std::uint32_t lo, std::uint32_t hi);
  std::uint32_t partition_lo() const { return part_lo_; }
  std::uint32_t partition_hi() const { return std::min(part_hi_, n_neurons_); }
  // Smallest delay of a synapse from a population (65535 when there is none): the longest exchange window.
  std::uint32_t min_delay() const;
  // Exchange mode: run(T) (T <= min_delay()) delivers no spikes and defers every input delivery that
  // lands at or after its end; deliver_exchanged(b, ...) then delivers the window's spikes of every
  // process (sorted by step, then id) and the deferred inputs, step by step: the ring buffers then
  // hold, bit for bit, what one process running straight through holds.
  void set_exchange(bool on);
  bool exchange() const { return exchange_; }
  void deliver_exchanged(std::uint32_t b, std::uint64_t n, const std::int64_t* steps, const std::uint32_t* ids);

  // ---- introspection ----
  double dt() const { return dt_; }
  std::uint32_t n_neurons() const { return n_neurons_; }
  std::uint64_t n_synapses() const;
  std::size_t synapse_bytes() const;  // bytes held by all projections
  std::size_t state_bytes_per_trial() const;  // bytes init_state allocates per trial
  std::uint32_t ring_slots() const { return ring_slots_; }
  const std::vector<Population>& populations() const { return pops_; }
  const std::vector<InputGroup>& inputs() const { return inputs_; }
  const std::vector<Projection<Real>>& projections() const { return projs_; }
  std::vector<std::uint32_t> readout_ids() const;  // global ids of readout neurons, in order

 private:
  void require_no_state(const char* what) const;
  std::uint32_t add_projection(Projection<Real>&& p, bool pre_is_input, std::uint32_t pre, std::uint32_t post);
  void prepare();
  void run_trial(std::uint32_t b, std::int64_t T, const std::vector<InputEvents<Real>>& inputs,
                 const RecordSpec& rec, RunOutput<Real>& out, unsigned team) const;
  void deliver(const Projection<Real>& p, std::uint32_t row, Real x, Real* const* slots, std::uint32_t lo,
               std::uint32_t hi, Counters& cnt) const;
  void drive_block(std::uint32_t lo, std::uint32_t hi, Rng4& rng, Real* slot, Counters& cnt) const;

  double dt_;
  std::uint64_t seed_;
  std::uint32_t n_neurons_ = 0;
  std::vector<InputGroup> inputs_;
  std::vector<Population> pops_;
  std::vector<Projection<Real>> projs_;
  std::vector<PoissonDrive> drives_;

  // prepared before the first step (derived constants, routing tables)
  bool prepared_ = false;
  std::uint32_t ring_slots_ = 1;
  std::vector<PopulationConstants<Real>> consts_;
  std::vector<std::vector<std::uint32_t>> proj_from_pop_, proj_from_input_;
  std::vector<PoissonTable> drive_tables_;
  std::vector<std::vector<std::uint32_t>> drive_thresholds_;  // small supports: compare-and-count sampling
  std::vector<std::uint32_t> drive_fast_;  // thresholds every draw is compared with (see drive_compare)
  std::vector<double> input_spike_prob_;

  std::int64_t t_ = 0;
  std::vector<TrialState<Real>> trials_;
  std::uint32_t part_lo_ = 0, part_hi_ = UINT32_MAX;  // owned neurons
  bool exchange_ = false;
  std::int64_t window_t0_ = 0;                       // first step of the last exchange-mode run
  std::vector<std::uint8_t> window_open_;            // per trial: that run's spikes not delivered yet
};

extern template class Network<float>;
extern template class Network<double>;

}  // namespace ahpsim
