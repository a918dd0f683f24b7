// Binding of the Loihi integer engine (cpp/include/ahpsim/loihi). The Python layer
// (ahpsim.loihi) validates first; the engine validates again and throws std::invalid_argument,
// which pybind11 turns into ValueError.
#include <pybind11/stl.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <variant>

#include "ahpsim/loihi/engine.hpp"
#include "bindings.hpp"

namespace py = pybind11;
namespace lh = ahpsim::loihi;
using ahpsim_py::to_numpy;

namespace {

template <class T>
using carray = py::array_t<T, py::array::c_style | py::array::forcecast>;

// int64 array -> vector<int32>, naming the parameter if a value does not fit.
std::vector<std::int32_t> to_i32(const carray<std::int64_t>& a, const char* what) {
  std::vector<std::int32_t> out(static_cast<std::size_t>(a.size()));
  const std::int64_t* p = a.data();
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (p[i] < std::numeric_limits<std::int32_t>::min() || p[i] > std::numeric_limits<std::int32_t>::max())
      throw std::invalid_argument(std::string(what) + " = " + std::to_string(p[i]) + " does not fit in 32 bits");
    out[i] = static_cast<std::int32_t>(p[i]);
  }
  return out;
}

using EngineVariant = std::variant<lh::Engine<lh::LavaRules>, lh::Engine<lh::Loihi1Rules>>;

EngineVariant make_engine(const std::string& rules, const lh::NetworkSpec& s) {
  if (rules == "lava") return EngineVariant(std::in_place_index<0>, s);
  if (rules == "loihi1") return EngineVariant(std::in_place_index<1>, s);
  throw std::invalid_argument("rules must be 'lava' or 'loihi1', got '" + rules + "'");
}

class PyLoihiEngine {
 public:
  PyLoihiEngine(const std::string& rules, std::int32_t n_inputs, const py::dict& cx, const py::list& projections)
      : engine_(make_engine(rules, make_spec(n_inputs, cx, projections))), rules_(rules) {}

  static lh::NetworkSpec make_spec(std::int32_t n_inputs, const py::dict& cx, const py::list& projections) {
    lh::NetworkSpec s;
    s.n_inputs = n_inputs;
    auto arr = [&](const char* k) { return to_i32(cx[k].cast<carray<std::int64_t>>(), k); };
    s.cx.du = arr("du");
    s.cx.dv = arr("dv");
    s.cx.vth_mant = arr("vth_mant");
    s.cx.bias_mant = arr("bias_mant");
    s.cx.bias_exp = arr("bias_exp");
    s.cx.refractory = arr("refractory");
    s.cx.parent = arr("parent");
    for (auto x : arr("spiking")) s.cx.spiking.push_back(static_cast<std::uint8_t>(x != 0));
    for (auto x : arr("join")) {
      if (x < 0 || x > 1) throw std::invalid_argument("join must be 0 (none) or 1 (ADD)");
      s.cx.join.push_back(static_cast<std::uint8_t>(x));
    }
    for (const auto& item : projections) {
      const auto d = item.cast<py::dict>();
      lh::ProjectionSpec p;
      p.from_input = d["from_input"].cast<bool>();
      p.pre_start = d["pre_start"].cast<std::int32_t>();
      p.n_pre = d["n_pre"].cast<std::int32_t>();
      p.post_start = d["post_start"].cast<std::int32_t>();
      p.n_post = d["n_post"].cast<std::int32_t>();
      p.weight_exp = d["weight_exponent"].cast<std::int32_t>();
      p.pre = to_i32(d["pre"].cast<carray<std::int64_t>>(), "pre");
      p.post = to_i32(d["post"].cast<carray<std::int64_t>>(), "post");
      p.weight = to_i32(d["weight_mantissa"].cast<carray<std::int64_t>>(), "weight_mantissa");
      p.delay = to_i32(d["delay"].cast<carray<std::int64_t>>(), "delay");
      p.name = d["name"].cast<std::string>();
      s.projections.push_back(std::move(p));
    }
    return s;
  }

  // record_uv: True (every compartment), False / None (none) or compartment indices (ascending)
  std::vector<std::int32_t> record_list(const py::object& record_uv) const {
    std::vector<std::int32_t> rec;
    if (record_uv.is_none()) return rec;
    if (py::isinstance<py::bool_>(record_uv)) {
      if (record_uv.cast<bool>()) {
        rec.resize(n_compartments());
        for (std::size_t c = 0; c < rec.size(); ++c) rec[c] = static_cast<std::int32_t>(c);
      }
      return rec;
    }
    rec = record_uv.cast<std::vector<std::int32_t>>();
    for (std::size_t k = 0; k < rec.size(); ++k)
      if (rec[k] < 0 || static_cast<std::size_t>(rec[k]) >= n_compartments() || (k && rec[k] <= rec[k - 1]))
        throw std::invalid_argument("record_uv: compartment indices must be ascending and in [0, n_compartments)");
    return rec;
  }

  py::tuple run(std::int64_t steps, const py::object& inputs, std::int64_t trials, const py::object& record_uv,
                int n_threads) const {
    const std::vector<std::int32_t> rec = record_list(record_uv);
    const std::int64_t n_in = std::visit([](const auto& e) -> std::int64_t { return e.n_inputs(); }, engine_);
    const std::int64_t n = std::visit([](const auto& e) -> std::int64_t { return static_cast<std::int64_t>(e.n_compartments()); }, engine_);
    carray<std::uint8_t> x;
    const std::uint8_t* xp = nullptr;
    if (!inputs.is_none()) {
      x = inputs.cast<carray<std::uint8_t>>();
      if (x.ndim() != 3 || x.shape(0) != trials || x.shape(1) != steps || x.shape(2) != n_in)
        throw std::invalid_argument("inputs must have shape [trials, steps, n_inputs] = [" + std::to_string(trials) +
                                    ", " + std::to_string(steps) + ", " + std::to_string(n_in) + "]");
      xp = x.data();
    }
    lh::RunOutput out;
    {
      py::gil_scoped_release release;
      out = std::visit([&](const auto& e) { return e.run(steps, trials, xp, rec, n_threads); }, engine_);
    }
    return outputs(std::move(out), trials, steps, n, rec.size());
  }

  // ---- stateful interface (continues from the held state, as the float engine's run)
  void init_state(std::int64_t trials) {
    std::visit([&](auto& e) { e.init_state(trials); }, engine_);
  }
  void reset_state() {
    std::visit([](auto& e) { e.reset_state(); }, engine_);
  }
  bool has_state() const {
    return std::visit([](const auto& e) { return e.has_state(); }, engine_);
  }
  std::int64_t n_trials() const {
    return std::visit([](const auto& e) { return e.n_trials(); }, engine_);
  }
  std::int64_t t() const {
    return std::visit([](const auto& e) { return e.t(); }, engine_);
  }
  std::size_t ring_slots() const {
    return std::visit([](const auto& e) { return e.ring_size(); }, engine_);
  }

  py::tuple advance(std::int64_t steps, const py::object& inputs, const py::object& record_uv, int n_threads) {
    if (!has_state()) throw std::invalid_argument("no state: call init_state(trials) first");
    const std::vector<std::int32_t> rec = record_list(record_uv);
    const std::int64_t trials = n_trials();
    const std::int64_t n_in = std::visit([](const auto& e) -> std::int64_t { return e.n_inputs(); }, engine_);
    const std::int64_t n = static_cast<std::int64_t>(n_compartments());
    if (steps < 0) throw std::invalid_argument("steps must be >= 0");
    carray<std::uint8_t> x;
    const std::uint8_t* xp = nullptr;
    if (!inputs.is_none()) {
      x = inputs.cast<carray<std::uint8_t>>();
      if (x.ndim() != 3 || x.shape(0) != trials || x.shape(1) != steps || x.shape(2) != n_in)
        throw std::invalid_argument("inputs must have shape [n_trials, steps, n_inputs] = [" + std::to_string(trials) +
                                    ", " + std::to_string(steps) + ", " + std::to_string(n_in) + "]");
      xp = x.data();
    }
    lh::RunOutput out;
    {
      py::gil_scoped_release release;
      out = std::visit([&](auto& e) { return e.advance(steps, xp, rec, n_threads); }, engine_);
    }
    return outputs(std::move(out), trials, steps, n, rec.size());
  }

  // Steps whose u wrapped / v saturated, per compartment (uint64 [n]), summed over the trials since
  // init_state.
  py::dict overflows() const {
    return std::visit([](const auto& e) {
      const auto n = static_cast<py::ssize_t>(e.n_compartments());
      std::vector<std::uint64_t> uw = e.u_wraps_total(), vs = e.v_saturations_total();
      uw.resize(static_cast<std::size_t>(n), 0);
      vs.resize(static_cast<std::size_t>(n), 0);
      py::dict d;
      d["u_wraps"] = to_numpy(std::move(uw), {n});
      d["v_saturations"] = to_numpy(std::move(vs), {n});
      return d;
    }, engine_);
  }

  // The held state as arrays: t, u / v (int64 [n_trials, n]), ref (int32 [n_trials, n]: held
  // steps left), acc (int64 [n_trials, ring_slots * width]: pending synaptic input).
  py::dict get_state() const {
    if (!has_state()) throw std::invalid_argument("no state: call init_state(trials) first");
    return std::visit([](const auto& e) {
      const auto& s = e.state();
      const std::size_t B = s.trials.size(), n = e.n_compartments(), w = e.ring_size() * e.acc_width();
      std::vector<std::int64_t> u(B * n), v(B * n), acc(B * w);
      std::vector<std::int32_t> ref(B * n);
      for (std::size_t b = 0; b < B; ++b) {
        const auto& st = s.trials[b];
        std::copy(st.u.begin(), st.u.end(), u.begin() + static_cast<std::ptrdiff_t>(b * n));
        std::copy(st.v.begin(), st.v.end(), v.begin() + static_cast<std::ptrdiff_t>(b * n));
        std::copy(st.ref.begin(), st.ref.end(), ref.begin() + static_cast<std::ptrdiff_t>(b * n));
        std::copy(st.acc.begin(), st.acc.end(), acc.begin() + static_cast<std::ptrdiff_t>(b * w));
      }
      const auto sb = static_cast<py::ssize_t>(B);
      py::dict d;
      d["t"] = s.t;
      d["u"] = to_numpy(std::move(u), {sb, static_cast<py::ssize_t>(n)});
      d["v"] = to_numpy(std::move(v), {sb, static_cast<py::ssize_t>(n)});
      d["ref"] = to_numpy(std::move(ref), {sb, static_cast<py::ssize_t>(n)});
      d["acc"] = to_numpy(std::move(acc), {sb, static_cast<py::ssize_t>(w)});
      return d;
    }, engine_);
  }

  void set_state(const py::dict& d) {
    std::visit([&](auto& e) {
      using State = typename std::decay_t<decltype(e)>::State;
      typename std::decay_t<decltype(e)>::Snapshot s;
      s.t = d["t"].cast<std::int64_t>();
      const auto u = d["u"].cast<carray<std::int64_t>>();
      const auto v = d["v"].cast<carray<std::int64_t>>();
      const auto ref = d["ref"].cast<carray<std::int64_t>>();
      const auto acc = d["acc"].cast<carray<std::int64_t>>();
      const std::size_t n = e.n_compartments(), w = e.ring_size() * e.acc_width();
      if (u.ndim() != 2 || v.ndim() != 2 || ref.ndim() != 2 || acc.ndim() != 2 || u.shape(0) < 1 ||
          v.shape(0) != u.shape(0) || ref.shape(0) != u.shape(0) || acc.shape(0) != u.shape(0) ||
          static_cast<std::size_t>(u.shape(1)) != n || static_cast<std::size_t>(v.shape(1)) != n ||
          static_cast<std::size_t>(ref.shape(1)) != n || static_cast<std::size_t>(acc.shape(1)) != w)
        throw std::invalid_argument("state arrays must be u, v, ref [n_trials, " + std::to_string(n) +
                                    "] and acc [n_trials, " + std::to_string(w) + "]");
      const auto B = static_cast<std::size_t>(u.shape(0));
      s.trials.resize(B);
      for (std::size_t b = 0; b < B; ++b) {
        State& st = s.trials[b];
        st.u.assign(u.data() + b * n, u.data() + (b + 1) * n);
        st.v.assign(v.data() + b * n, v.data() + (b + 1) * n);
        st.ref.resize(n);
        for (std::size_t c = 0; c < n; ++c) {
          const std::int64_t r = ref.data()[b * n + c];
          if (r < 0 || r > 63) throw std::invalid_argument("ref = " + std::to_string(r) + " is out of range [0, 63]");
          st.ref[c] = static_cast<std::int32_t>(r);
        }
        st.acc.assign(acc.data() + b * w, acc.data() + (b + 1) * w);
      }
      e.set_state(std::move(s));
    }, engine_);
  }

  static py::tuple outputs(lh::RunOutput&& out, std::int64_t trials, std::int64_t steps, std::int64_t n,
                           std::size_t n_rec) {
    std::vector<py::ssize_t> shape = {static_cast<py::ssize_t>(trials), static_cast<py::ssize_t>(steps),
                                      static_cast<py::ssize_t>(n)};
    py::object u = py::none(), v = py::none();
    if (n_rec) {  // [trials, steps, recorded compartments]
      std::vector<py::ssize_t> rshape = {shape[0], shape[1], static_cast<py::ssize_t>(n_rec)};
      u = to_numpy(std::move(out.u), rshape);
      v = to_numpy(std::move(out.v), rshape);
    }
    py::dict counts;  // summed over trials and steps
    counts["spikes"] = to_numpy(std::move(out.spike_counts), {static_cast<py::ssize_t>(n)});
    const auto n_in = static_cast<py::ssize_t>(out.input_counts.size());
    counts["inputs"] = to_numpy(std::move(out.input_counts), {n_in});
    return py::make_tuple(to_numpy(std::move(out.spikes), shape), u, v, counts);
  }

  std::size_t n_compartments() const {
    return std::visit([](const auto& e) { return e.n_compartments(); }, engine_);
  }
  std::size_t n_synapses() const {
    return std::visit([](const auto& e) { return e.n_synapses(); }, engine_);
  }
  const std::string& rules() const { return rules_; }

 private:
  EngineVariant engine_;
  std::string rules_;
};

template <class R>
py::dict rule_limits() {
  py::dict d;
  d["du"] = py::make_tuple(0, R::kDuMax);
  d["dv"] = py::make_tuple(0, R::kDvMax);
  d["weight_mantissa"] = py::make_tuple(R::kWeightMantMin, R::kWeightMantMax);
  d["weight_exponent"] = py::make_tuple(lh::bits::kWeightExpMin, lh::bits::kWeightExpMax);
  d["delay"] = py::make_tuple(0, R::kDelayMax);
  d["refractory"] = py::make_tuple(R::kRefractoryMin, R::kRefractoryMax);
  d["vth_mant"] = py::make_tuple(0, lh::bits::kVthMantMax);
  d["bias_mant"] = py::make_tuple(lh::bits::kBiasMantMin, lh::bits::kBiasMantMax);
  d["bias_exp"] = py::make_tuple(0, lh::bits::kBiasExpMax);
  d["multi_compartment"] = R::kMultiCompartment;
  d["input_latency"] = R::kInputLatency;
  d["recurrent_latency"] = R::kRecurrentLatency;
  d["exponent_on_sum"] = R::kExponentOnSum;
  d["state_bits"] = lh::bits::kStateBits;
  d["vth_shift"] = lh::bits::kVthShift;
  d["activation_shift"] = lh::bits::kActivationShift;
  return d;
}

}  // namespace

void register_loihi(pybind11::module_& m) {
  py::class_<PyLoihiEngine>(m, "LoihiEngine")
      .def(py::init<const std::string&, std::int32_t, const py::dict&, const py::list&>(), py::arg("rules"),
           py::arg("n_inputs"), py::arg("compartments"), py::arg("projections"))
      .def("run", &PyLoihiEngine::run, py::arg("steps"), py::arg("inputs"), py::arg("trials") = 1,
           py::arg("record_uv") = py::bool_(true), py::arg("n_threads") = 1)
      .def("init_state", &PyLoihiEngine::init_state, py::arg("trials"))
      .def("reset_state", &PyLoihiEngine::reset_state)
      .def("advance", &PyLoihiEngine::advance, py::arg("steps"), py::arg("inputs"), py::arg("record_uv") = py::bool_(true),
           py::arg("n_threads") = 1)
      .def("get_state", &PyLoihiEngine::get_state)
      .def("overflows", &PyLoihiEngine::overflows)
      .def("set_state", &PyLoihiEngine::set_state, py::arg("state"))
      .def_property_readonly("has_state", &PyLoihiEngine::has_state)
      .def_property_readonly("n_trials", &PyLoihiEngine::n_trials)
      .def_property_readonly("t", &PyLoihiEngine::t)
      .def_property_readonly("ring_slots", &PyLoihiEngine::ring_slots)
      .def_property_readonly("n_compartments", &PyLoihiEngine::n_compartments)
      .def_property_readonly("n_synapses", &PyLoihiEngine::n_synapses)
      .def_property_readonly("rules", &PyLoihiEngine::rules);
  m.def("loihi_limits", [](const std::string& rules) {
    if (rules == "lava") return rule_limits<lh::LavaRules>();
    if (rules == "loihi1") return rule_limits<lh::Loihi1Rules>();
    throw std::invalid_argument("rules must be 'lava' or 'loihi1', got '" + rules + "'");
  }, py::arg("rules"));
}
