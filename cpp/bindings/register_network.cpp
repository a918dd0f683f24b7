#include "ahpsim/network.hpp"

#include <pybind11/stl.h>

#include <cstring>
#include <string>
#include <type_traits>

#include "bindings.hpp"

namespace py = pybind11;
using ahpsim_py::to_numpy;

namespace {

template <class T>
using carray = py::array_t<T, py::array::c_style | py::array::forcecast>;

template <class T>
std::vector<T> vec_of(const carray<T>& a) {
  return std::vector<T>(a.data(), a.data() + a.size());
}

// ---- pickling of snapshots: plain bytes per state array, sizes checked on the way back ----------
template <class T>
py::bytes vec_bytes(const std::vector<T>& v) {
  static_assert(std::is_trivially_copyable_v<T>);
  return py::bytes(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

template <class T>
std::vector<T> bytes_vec(const py::handle& b, std::size_t n, const char* what) {
  static_assert(std::is_trivially_copyable_v<T>);
  const std::string s = py::cast<std::string>(b);
  if (s.size() != n * sizeof(T))
    throw std::invalid_argument(std::string("snapshot: ") + what + " has " + std::to_string(s.size()) +
                                " bytes, expected " + std::to_string(n * sizeof(T)));
  std::vector<T> v(n);
  std::memcpy(v.data(), s.data(), s.size());
  return v;
}

constexpr int kSnapshotFormat = 1;

template <class Real>
py::tuple snapshot_state(const ahpsim::Snapshot<Real>& s) {
  py::list trials;
  for (const auto& st : s.trials) {
    trials.append(py::make_tuple(vec_bytes(st.v), vec_bytes(st.aux), vec_bytes(st.refr), vec_bytes(st.z),
                                 vec_bytes(st.ring), vec_bytes(std::vector<ahpsim::Rng>{st.rng}),
                                 vec_bytes(st.block_rng), vec_bytes(std::vector<ahpsim::Counters>{st.counters})));
  }
  return py::make_tuple(kSnapshotFormat, sizeof(Real), s.t, s.n_neurons, s.ring_slots, trials);
}

template <class Real>
ahpsim::Snapshot<Real> snapshot_from_state(const py::tuple& t) {
  if (t.size() != 6 || py::cast<int>(t[0]) != kSnapshotFormat || py::cast<std::size_t>(t[1]) != sizeof(Real))
    throw std::invalid_argument("snapshot: not a state of this format and precision");
  ahpsim::Snapshot<Real> s;
  s.t = py::cast<std::int64_t>(t[2]);
  s.n_neurons = py::cast<std::uint32_t>(t[3]);
  s.ring_slots = py::cast<std::uint32_t>(t[4]);
  if (s.t < 0) throw std::invalid_argument("snapshot: t must be >= 0");
  const std::size_t N = s.n_neurons, blocks = (N + ahpsim::kRngBlock - 1) / ahpsim::kRngBlock;
  for (const auto& item : py::cast<py::list>(t[5])) {
    const auto tr = py::cast<py::tuple>(item);
    if (tr.size() != 8) throw std::invalid_argument("snapshot: a trial needs 8 arrays");
    ahpsim::TrialState<Real> st;
    st.v = bytes_vec<Real>(tr[0], N, "v");
    st.aux = bytes_vec<Real>(tr[1], N, "aux");
    st.refr = bytes_vec<std::int32_t>(tr[2], N, "refr");
    st.z = bytes_vec<std::uint8_t>(tr[3], N, "z");
    st.ring = bytes_vec<Real>(tr[4], N * s.ring_slots, "ring");
    st.rng = bytes_vec<ahpsim::Rng>(tr[5], 1, "rng")[0];
    st.block_rng = bytes_vec<ahpsim::Rng4>(tr[6], blocks, "block_rng");
    st.counters = bytes_vec<ahpsim::Counters>(tr[7], 1, "counters")[0];
    s.trials.push_back(std::move(st));
  }
  return s;
}

template <class Real>
void bind_network(py::module_& m, const char* name) {
  using Net = ahpsim::Network<Real>;
  using Snap = ahpsim::Snapshot<Real>;
  py::class_<Snap>(m, (std::string(name) + "Snapshot").c_str())
      .def_property_readonly("t", [](const Snap& s) { return s.t; })
      .def_property_readonly("n_trials", [](const Snap& s) { return s.trials.size(); })
      .def(py::pickle(&snapshot_state<Real>, &snapshot_from_state<Real>));

  py::class_<Net>(m, name)
      .def(py::init<double, std::uint64_t>(), py::arg("dt") = 1.0, py::arg("seed") = 0)
      .def("add_input", &Net::add_input, py::arg("name"), py::arg("n"), py::arg("poisson_rate_hz") = 0.0)
      .def(
          "add_population",
          [](Net& net, const std::string& pname, std::uint32_t n, ahpsim::ModelKind kind, ahpsim::ResetMode reset,
             const carray<double>& tau_m, const carray<double>& tau_aux, const carray<double>& beta,
             const carray<double>& v_th, const carray<double>& bias, const carray<std::int32_t>& n_ref,
             ahpsim::RefractoryMode refractory) {
            ahpsim::PopulationParams p;
            p.kind = kind;
            p.reset = reset;
            p.refractory = refractory;
            p.tau_m = vec_of(tau_m);
            p.tau_aux = vec_of(tau_aux);
            p.beta = vec_of(beta);
            p.v_th = vec_of(v_th);
            p.bias = vec_of(bias);
            p.n_ref = vec_of(n_ref);
            return net.add_population(pname, n, std::move(p));
          },
          py::arg("name"), py::arg("n"), py::arg("kind"), py::arg("reset"), py::arg("tau_m"), py::arg("tau_aux"),
          py::arg("beta"), py::arg("v_th"), py::arg("bias"), py::arg("n_ref"),
          py::arg("refractory") = ahpsim::RefractoryMode::Block)
      .def(
          "connect",
          [](Net& net, bool pre_is_input, std::uint32_t pre, std::uint32_t post, const carray<std::uint32_t>& pre_idx,
             const carray<std::uint32_t>& post_idx, const carray<Real>& weight, const carray<std::uint16_t>& delay) {
            const auto n = static_cast<std::uint64_t>(pre_idx.size());
            if (static_cast<std::uint64_t>(post_idx.size()) != n || static_cast<std::uint64_t>(weight.size()) != n ||
                static_cast<std::uint64_t>(delay.size()) != n)
              throw std::invalid_argument("pre, post, weight and delay must have the same length");
            py::gil_scoped_release release;
            return net.connect(pre_is_input, pre, post, n, pre_idx.data(), post_idx.data(), weight.data(), delay.data());
          },
          py::arg("pre_is_input"), py::arg("pre"), py::arg("post"), py::arg("pre_idx"), py::arg("post_idx"),
          py::arg("weight"), py::arg("delay"))
      .def("connect_fixed_indegree", &Net::connect_fixed_indegree, py::arg("pre_is_input"), py::arg("pre"),
           py::arg("post"), py::arg("indegree"), py::arg("weight"), py::arg("delay"), py::arg("seed"),
           py::arg("allow_autapses"), py::call_guard<py::gil_scoped_release>())
      .def(
          "set_projection_weights",
          [](Net& net, std::uint32_t k, const carray<Real>& weight) {
            net.set_projection_weights(k, static_cast<std::uint64_t>(weight.size()), weight.data());
          },
          py::arg("k"), py::arg("weight"))
      .def(
          "set_projection_delays",
          [](Net& net, std::uint32_t k, const carray<std::uint16_t>& delay) {
            net.set_projection_delays(k, static_cast<std::uint64_t>(delay.size()), delay.data());
          },
          py::arg("k"), py::arg("delay"))
      .def("add_poisson_drive", &Net::add_poisson_drive, py::arg("pop"), py::arg("rate_hz"), py::arg("weight"))
      .def("set_partition", &Net::set_partition, py::arg("lo"), py::arg("hi"))
      .def_property_readonly("partition", [](const Net& net) {
        return py::make_tuple(net.partition_lo(), net.partition_hi());
      })
      .def_property_readonly("min_delay", &Net::min_delay)
      .def("set_exchange", &Net::set_exchange, py::arg("on"))
      .def_property_readonly("exchange", &Net::exchange)
      .def(
          "deliver_exchanged",
          [](Net& net, std::uint32_t b, const carray<std::int64_t>& steps, const carray<std::uint32_t>& ids) {
            if (steps.size() != ids.size()) throw std::invalid_argument("steps and ids must have the same length");
            py::gil_scoped_release release;
            net.deliver_exchanged(b, static_cast<std::uint64_t>(steps.size()), steps.data(), ids.data());
          },
          py::arg("trial"), py::arg("steps"), py::arg("ids"))
      .def("set_seed", &Net::set_seed, py::arg("seed"))
      .def("init_state", &Net::init_state, py::arg("n_trials"), py::arg("first_trial") = 0)
      .def("reset_state", &Net::reset_state)
      .def_property_readonly("has_state", &Net::has_state)
      .def_property_readonly("n_trials", &Net::n_trials)
      .def_property_readonly("t", &Net::t)
      .def_property_readonly("dt", &Net::dt)
      .def_property_readonly("n_neurons", &Net::n_neurons)
      .def_property_readonly("n_synapses", &Net::n_synapses)
      .def_property_readonly("synapse_bytes", &Net::synapse_bytes)
      .def_property_readonly("state_bytes_per_trial", &Net::state_bytes_per_trial)
      .def_property_readonly("ring_slots", &Net::ring_slots)
      .def("snapshot", &Net::snapshot)
      .def("restore", &Net::restore, py::arg("snapshot"))
      .def("get_state",
           [](const Net& net, const std::string& var) {
             auto v = net.get_state(var);
             return to_numpy(std::move(v), {static_cast<py::ssize_t>(net.n_trials()),
                                            static_cast<py::ssize_t>(net.n_neurons())});
           },
           py::arg("var"))
      .def("set_state",
           [](Net& net, const std::string& var, const carray<double>& values) {
             net.set_state(var, values.data(), static_cast<std::size_t>(values.size()));
           },
           py::arg("var"), py::arg("values"))
      .def("counters",
           [](const Net& net) {
             const auto c = net.counters();
             py::dict d;
             d["spikes"] = c.spikes;
             d["syn_events"] = c.syn_events;
             d["input_events"] = c.input_events;
             d["drive_events"] = c.drive_events;
             d["neuron_updates"] = c.neuron_updates;
             return d;
           })
      .def("projection_info",
           [](const Net& net) {
             py::list out;
             for (const auto& p : net.projections()) {
               py::dict d;
               d["pre_is_input"] = p.pre_is_input;
               d["pre"] = p.pre_group;
               d["post"] = p.post_pop;
               d["n_synapses"] = p.n_synapses();
               d["bytes"] = p.bytes();
               d["min_delay"] = p.min_delay();
               d["homogeneous_weight"] = p.homogeneous();
               d["dense_rows"] = p.dense();
               d["max_delay"] = p.max_delay();
               out.append(d);
             }
             return out;
           })
      .def("projection_arrays",
           [](const Net& net, std::uint32_t k) {
             // (pre_local, post_global, weight, delay) of projection k, in delivery order.
             if (k >= net.projections().size()) throw std::invalid_argument("projection index out of range");
             const auto& p = net.projections()[k];
             const std::size_t n = p.target.size();
             std::vector<std::uint32_t> pre(n), post(p.target);
             std::vector<Real> w(n);
             for (std::size_t i = 0; i < n; ++i) w[i] = p.weight_of(i);
             std::vector<std::uint16_t> d(n);
             for (std::uint32_t r = 0; r < p.n_pre; ++r)
               for (std::uint64_t s = p.seg_ptr[r]; s < p.seg_ptr[r + 1]; ++s)
                 for (std::uint64_t i = p.seg_begin(s); i < p.seg_end[s]; ++i) {
                   pre[i] = r;
                   d[i] = p.seg_delay[s];
                 }
             const auto sn = static_cast<py::ssize_t>(n);
             return py::make_tuple(to_numpy(std::move(pre), {sn}), to_numpy(std::move(post), {sn}),
                                   to_numpy(std::move(w), {sn}), to_numpy(std::move(d), {sn}));
           },
           py::arg("k"))
      .def(
          "run",
          [](Net& net, std::int64_t T, const py::list& inputs, const std::vector<std::uint8_t>& spikes_of_pop,
             const carray<std::uint32_t>& state_ids, bool readouts, unsigned n_threads) {
            // inputs: list of (group, n_batch, ptr int64, channel int32, value Real); arrays are kept
            // alive by `inputs` for the whole call.
            std::vector<ahpsim::InputEvents<Real>> ev;
            std::vector<py::object> keep;
            for (const auto& item : inputs) {
              auto tup = item.cast<py::tuple>();
              if (tup.size() == 3) {
                // dense: (group, n_batch, array [n_batch, T, n]) of bool spikes or Real values
                const auto n_batch = tup[1].cast<std::uint32_t>();
                ahpsim::InputEvents<Real> e;
                e.group = tup[0].cast<std::uint32_t>();
                e.n_batch = n_batch;
                py::array arr = tup[2].cast<py::array>();
                if (arr.ndim() != 3 || arr.shape(0) != static_cast<py::ssize_t>(n_batch) || arr.shape(1) != T)
                  throw std::invalid_argument("inputs: dense input must have shape [n_batch, T, n]");
                e.n_channels = static_cast<std::uint32_t>(arr.shape(2));
                if (arr.dtype().is(py::dtype::of<bool>())) {
                  auto a = py::array_t<bool, py::array::c_style | py::array::forcecast>::ensure(arr);
                  e.dense_spikes = reinterpret_cast<const std::uint8_t*>(a.data());
                  keep.push_back(a);
                } else {
                  auto a = carray<Real>::ensure(arr);
                  if (!a) throw std::invalid_argument("inputs: dense input must be numeric");
                  e.dense_value = a.data();
                  keep.push_back(a);
                }
                ev.push_back(e);
                continue;
              }
              auto ptr = tup[2].cast<carray<std::int64_t>>();
              auto ch = tup[3].cast<carray<std::int32_t>>();
              auto val = tup[4].cast<carray<Real>>();
              const auto n_batch = tup[1].cast<std::uint32_t>();
              if (ptr.size() != static_cast<py::ssize_t>(n_batch) * (T + 1))
                throw std::invalid_argument("inputs: offsets must have n_batch * (T + 1) entries");
              if (ch.size() != val.size()) throw std::invalid_argument("inputs: channel and value lengths differ");
              for (py::ssize_t i = 0; i < ptr.size(); ++i)
                if (ptr.data()[i] > ch.size()) throw std::invalid_argument("inputs: offsets exceed the event arrays");
              ahpsim::InputEvents<Real> e;
              e.group = tup[0].cast<std::uint32_t>();
              e.n_batch = n_batch;
              e.ptr = ptr.data();
              e.channel = ch.data();
              e.value = val.data();
              ev.push_back(e);
              keep.push_back(ptr);
              keep.push_back(ch);
              keep.push_back(val);
            }
            ahpsim::RecordSpec rec;
            rec.spikes_of_pop = spikes_of_pop;
            rec.state_ids = vec_of(state_ids);
            rec.readouts = readouts;
            ahpsim::RunOutput<Real> out;
            {
              py::gil_scoped_release release;
              out = net.run(T, ev, rec, n_threads);
            }
            const auto B = static_cast<py::ssize_t>(out.spikes.size());
            py::list steps, ids;
            for (auto& s : out.spikes) {
              const auto n = static_cast<py::ssize_t>(s.step.size());
              steps.append(to_numpy(std::move(s.step), {n}));
              ids.append(to_numpy(std::move(s.id), {n}));
            }
            const auto k = static_cast<py::ssize_t>(rec.state_ids.size());
            const auto n_ro = B * T == 0 ? py::ssize_t(0) : static_cast<py::ssize_t>(out.y_trace.size()) / (B * T);
            py::dict d;
            d["spike_steps"] = steps;
            d["spike_ids"] = ids;
            d["v"] = to_numpy(std::move(out.v_trace), {B, T, k});
            d["aux"] = to_numpy(std::move(out.aux_trace), {B, T, k});
            d["y"] = to_numpy(std::move(out.y_trace), {B, T, n_ro});
            return d;
          },
          py::arg("T"), py::arg("inputs"), py::arg("spikes_of_pop"), py::arg("state_ids"), py::arg("readouts"),
          py::arg("n_threads"));
}

}  // namespace

void register_network(py::module_& m) {
  bind_network<float>(m, "Network32");
  bind_network<double>(m, "Network64");
}
