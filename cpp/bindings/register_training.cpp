// Training kernels (ahpsim.torch's fused layer): arrays are checked here (dtype, C order, shape) and
// used in place, without copies; the GIL is released while the kernels run.
#include "ahpsim/bptt.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "bindings.hpp"

namespace py = pybind11;

namespace {

std::string shape_str(const std::vector<py::ssize_t>& s) {
  std::string out = "(";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + (s.size() == 1 ? ",)" : ")");
}

// The data of `o` (None -> nullptr) after checking dtype, C-contiguity and shape.
template <class T>
T* data_of(const py::object& o, const char* name, const std::vector<py::ssize_t>& shape, bool writable = false) {
  if (o.is_none()) return nullptr;
  if (!py::isinstance<py::array>(o)) throw py::type_error(std::string(name) + ": expected a numpy array");
  py::array a = py::reinterpret_borrow<py::array>(o);
  if (!a.dtype().is(py::dtype::of<T>()))
    throw py::type_error(std::string(name) + ": expected dtype " + std::string(py::str(py::dtype::of<T>())) +
                         ", got " + std::string(py::str(a.dtype())));
  if (!(a.flags() & py::array::c_style)) throw std::invalid_argument(std::string(name) + ": must be C-contiguous");
  std::vector<py::ssize_t> got(a.shape(), a.shape() + a.ndim());
  if (got != shape)
    throw std::invalid_argument(std::string(name) + ": expected shape " + shape_str(shape) + ", got " + shape_str(got));
  if (writable && !a.writeable()) throw std::invalid_argument(std::string(name) + ": must be writable");
  return static_cast<T*>(a.mutable_data());
}

std::int32_t check_delays(const std::int32_t* d, std::size_t n, std::int32_t uniform, std::int32_t lo, const char* name) {
  if (!d) {
    if (uniform < lo) throw std::invalid_argument(std::string(name) + ": delays must be >= " + std::to_string(lo));
    return uniform;
  }
  if (n == 0) return lo;
  const auto mm = std::minmax_element(d, d + n);
  if (*mm.first < lo) throw std::invalid_argument(std::string(name) + ": delays must be >= " + std::to_string(lo));
  return *mm.second;
}

// numpy bool arrays hold one byte per entry, 0 or 1: events of weight 1 for the kernels.
bool is_bool(const py::array& a) { return a.dtype().is(py::dtype::of<bool>()); }

// Input events: of the layer's float type or bool, nothing else.
template <class Real>
void check_events_dtype(const py::array& a, const char* name) {
  if (!is_bool(a) && !a.dtype().is(py::dtype::of<Real>()))
    throw py::type_error(std::string(name) + ": expected dtype " + std::string(py::str(py::dtype::of<Real>())) +
                         " or bool, got " + std::string(py::str(a.dtype())));
}

// A layer shaped like the spikes z [T, B, N].
template <class Real>
ahpsim::bptt::Layer<Real> layer_of(const py::object& z) {
  if (!py::isinstance<py::array>(z)) throw py::type_error("z: expected a numpy array");
  py::array za = py::reinterpret_borrow<py::array>(z);
  if (za.ndim() != 3) throw std::invalid_argument("z: expected a [T, B, N] array");
  ahpsim::bptt::Layer<Real> L;
  L.T = za.shape(0);
  L.B = za.shape(1);
  L.N = za.shape(2);
  return L;
}

// The per-neuron constants [N] of a layer (all required).
template <class Real>
void set_constants(ahpsim::bptt::Layer<Real>& L, const py::object& alpha, const py::object& v_th,
                   const py::object& rho_c, const py::object& beta_c, const py::object& rho_a,
                   const py::object& beta_a, const std::vector<py::ssize_t>& n1) {
  L.alpha = data_of<Real>(alpha, "alpha", n1);
  L.v_th = data_of<Real>(v_th, "v_th", n1);
  L.rho_c = data_of<Real>(rho_c, "rho_c", n1);
  L.beta_c = data_of<Real>(beta_c, "beta_c", n1);
  L.rho_a = data_of<Real>(rho_a, "rho_a", n1);
  L.beta_a = data_of<Real>(beta_a, "beta_a", n1);
  if (!L.alpha || !L.v_th || !L.rho_c || !L.beta_c || !L.rho_a || !L.beta_a)
    throw std::invalid_argument("alpha, v_th, rho_c, beta_c, rho_a and beta_a are required");
}

// The readout of a layer (w_out [n_out, N], b_out [n_out] or None, kappa [n_out], d_out >= 0); none
// when w_out is None.
template <class Real>
void set_readout(ahpsim::bptt::Layer<Real>& L, const py::object& w_out, const py::object& b_out,
                 const py::object& kappa, std::int32_t d_out, py::ssize_t N) {
  if (w_out.is_none()) return;
  if (!py::isinstance<py::array>(w_out) || py::reinterpret_borrow<py::array>(w_out).ndim() != 2)
    throw std::invalid_argument("w_out: expected an [n_out, N] array");
  const py::ssize_t K = py::reinterpret_borrow<py::array>(w_out).shape(0);
  L.n_out = K;
  L.w_out = data_of<Real>(w_out, "w_out", {K, N});
  L.b_out = data_of<Real>(b_out, "b_out", {K});
  L.kappa = data_of<Real>(kappa, "kappa", {K});
  if (!L.kappa) throw std::invalid_argument("kappa: required with w_out");
  if (d_out < 0) throw std::invalid_argument("d_out: must be >= 0, got " + std::to_string(d_out));
  L.d_out = d_out;
}

// The layer's input x (values of Real or bool events; [T, B, n_in], or [B, T, n_in] batch-major) into L.
template <class Real>
void set_input(ahpsim::bptt::Layer<Real>& L, py::object x, bool x_batch_major) {
  if (!py::isinstance<py::array>(x)) throw py::type_error("x: expected a numpy array");
  py::array xa = py::reinterpret_borrow<py::array>(x);
  if (xa.ndim() != 3) throw std::invalid_argument(x_batch_major ? "x: expected a [B, T, n_in] array"
                                                                : "x: expected a [T, B, n_in] array");
  const py::ssize_t T = L.T, B = L.B, n_in = xa.shape(2);
  L.n_in = n_in;
  L.x_batch_major = x_batch_major;
  const std::vector<py::ssize_t> x_shape = x_batch_major ? std::vector<py::ssize_t>{B, T, n_in}
                                                         : std::vector<py::ssize_t>{T, B, n_in};
  check_events_dtype<Real>(xa, "x");
  if (is_bool(xa))
    L.x_events = reinterpret_cast<const std::uint8_t*>(data_of<bool>(x, "x", x_shape));
  else
    L.x = data_of<Real>(x, "x", x_shape);
}

template <class Real>
void layer_forward(py::object z, py::object v, py::object A, py::object free, py::object alpha, py::object v_th,
                   py::object rho_c, py::object beta_c, py::object rho_a, py::object beta_a, py::object bias,
                   std::int32_t n_ref, bool reset_zero, bool has_ahp, bool has_alif, py::object w_rec,
                   py::object d_rec, std::int32_t d_rec_uniform, py::object x, py::object w_in, py::object d_in,
                   std::int32_t d_in_uniform, py::object E, py::object y, py::object w_out, py::object b_out,
                   py::object kappa, std::int32_t d_out, bool x_batch_major, py::object z_bits, unsigned n_threads,
                   bool refractory_clamp) {
  ahpsim::bptt::Layer<Real> L = layer_of<Real>(z);
  const py::ssize_t T = L.T, B = L.B, N = L.N;
  const std::vector<py::ssize_t> tbn{T, B, N}, n1{N}, nn{N, N};
  ahpsim::bptt::LayerOutputs<Real> out;
  out.z_bits = data_of<std::uint64_t>(z_bits, "z_bits", {T, B, ahpsim::bptt::spike_words(N)}, true);
  out.z = data_of<Real>(z, "z", tbn, true);
  out.v = data_of<Real>(v, "v", tbn, true);
  out.A = data_of<Real>(A, "A", tbn, true);
  out.free = data_of<std::uint8_t>(free, "free", tbn, true);
  if (n_ref < 0) throw std::invalid_argument("n_ref must be >= 0");
  set_constants(L, alpha, v_th, rho_c, beta_c, rho_a, beta_a, n1);
  L.bias = data_of<Real>(bias, "bias", n1);
  L.n_ref = n_ref;
  L.refractory_clamp = refractory_clamp;
  L.reset_zero = reset_zero;
  L.has_ahp = has_ahp;
  L.has_alif = has_alif;
  L.w_rec = data_of<Real>(w_rec, "w_rec", nn);
  if (!L.w_rec) throw std::invalid_argument("w_rec: required");
  L.d_rec = data_of<std::int32_t>(d_rec, "d_rec", nn);
  L.d_rec_uniform = d_rec_uniform;
  std::int32_t max_d = check_delays(L.d_rec, static_cast<std::size_t>(N * N), d_rec_uniform, 1, "d_rec");
  if (!x.is_none()) {
    set_input(L, x, x_batch_major);
    const py::ssize_t n_in = L.n_in;
    L.w_in = data_of<Real>(w_in, "w_in", {n_in, N});
    if (!L.w_in) throw std::invalid_argument("w_in: required with x");
    L.d_in = data_of<std::int32_t>(d_in, "d_in", {n_in, N});
    L.d_in_uniform = d_in_uniform;
    max_d = std::max(max_d, check_delays(L.d_in, static_cast<std::size_t>(n_in * N), d_in_uniform, 0, "d_in"));
  }
  L.E = data_of<Real>(E, "E", tbn);
  L.max_delay = max_d;
  set_readout(L, w_out, b_out, kappa, d_out, N);
  out.y = data_of<Real>(y, "y", {T, B, static_cast<py::ssize_t>(L.n_out)}, true);
  if (L.n_out && !out.y) throw std::invalid_argument("y: required with w_out");
  py::gil_scoped_release release;
  ahpsim::bptt::forward(L, out, std::max(1u, n_threads));
}

template <class Real>
void layer_backward(py::object gI, py::object G, py::object z, py::object v, py::object A, py::object free,
                    py::object alpha, py::object v_th, py::object rho_c, py::object beta_c, py::object rho_a,
                    py::object beta_a, bool reset_zero, bool detach_reset, bool has_ahp, bool has_alif,
                    py::object w_rec, py::object d_rec, std::int32_t d_rec_uniform, int surrogate,
                    double dampening, double slope, double sigma, py::object G_rate, py::object Gy, py::object gU,
                    py::object w_out, py::object kappa, std::int32_t d_out, py::object g_alpha,
                    py::object g_rho_c, py::object g_rho_a, unsigned n_threads, bool refractory_clamp,
                    py::object z_bits, py::object g_w_rec, py::object g_w_in, py::object x, bool x_batch_major,
                    std::int32_t d_in_uniform, bool Gy_batch_major) {
  ahpsim::bptt::Layer<Real> L = layer_of<Real>(z);
  const py::ssize_t T = L.T, B = L.B, N = L.N;
  const std::vector<py::ssize_t> tbn{T, B, N}, n1{N}, nn{N, N};
  ahpsim::bptt::LayerGrad<Real> in;
  Real* gIp = data_of<Real>(gI, "gI", tbn, true);
  if (!gIp) throw std::invalid_argument("gI: required");
  in.G = data_of<Real>(G, "G", tbn);
  in.z = data_of<Real>(z, "z", tbn);
  in.z_bits = data_of<std::uint64_t>(z_bits, "z_bits", {T, B, static_cast<py::ssize_t>(ahpsim::bptt::spike_words(N))});
  in.v = data_of<Real>(v, "v", tbn);
  if (!in.v) throw std::invalid_argument("v: required");
  in.A = data_of<Real>(A, "A", tbn);
  if (has_alif && !in.A) throw std::invalid_argument("A: required with has_alif");
  in.free = data_of<std::uint8_t>(free, "free", tbn);
  set_constants(L, alpha, v_th, rho_c, beta_c, rho_a, beta_a, n1);
  L.reset_zero = reset_zero;
  L.refractory_clamp = refractory_clamp;
  if (refractory_clamp && !in.free) throw std::invalid_argument("refractory_clamp: needs free (n_ref > 0)");
  L.has_ahp = has_ahp;
  L.has_alif = has_alif;
  in.detach_reset = detach_reset;
  in.w_post = data_of<Real>(w_rec, "w_rec", nn);
  if (!in.w_post) throw std::invalid_argument("w_rec: required");
  in.d_post = data_of<std::int32_t>(d_rec, "d_rec", nn);
  L.d_rec_uniform = d_rec_uniform;
  check_delays(in.d_post, static_cast<std::size_t>(N * N), d_rec_uniform, 1, "d_rec");
  if (surrogate < 0 || surrogate > 2)
    throw std::invalid_argument("surrogate: 0 (triangle), 1 (fast sigmoid) or 2 (gaussian), got " +
                                std::to_string(surrogate));
  in.surrogate.kind = static_cast<ahpsim::bptt::SurrogateKind>(surrogate);
  in.surrogate.dampening = static_cast<Real>(dampening);
  in.surrogate.slope = static_cast<Real>(slope);
  in.surrogate.sigma = static_cast<Real>(sigma);
  in.G_rate = data_of<Real>(G_rate, "G_rate", n1);
  set_readout(L, w_out, py::none(), kappa, d_out, N);
  const std::vector<py::ssize_t> tbk{T, B, static_cast<py::ssize_t>(L.n_out)};
  in.Gy_batch_major = Gy_batch_major;
  in.Gy = data_of<Real>(Gy, "Gy", Gy_batch_major ? std::vector<py::ssize_t>{B, T, static_cast<py::ssize_t>(L.n_out)}
                                                 : tbk);
  in.gU = data_of<Real>(gU, "gU", tbk, true);
  if (L.n_out && !in.gU) throw std::invalid_argument("gU: required with w_out");
  const std::vector<py::ssize_t> bn{B, N};
  in.g_alpha = data_of<Real>(g_alpha, "g_alpha", bn, true);
  in.g_rho_c = data_of<Real>(g_rho_c, "g_rho_c", bn, true);
  in.g_rho_a = data_of<Real>(g_rho_a, "g_rho_a", bn, true);
  if ((in.g_alpha != nullptr) != (in.g_rho_c != nullptr) || (in.g_alpha != nullptr) != (in.g_rho_a != nullptr))
    throw std::invalid_argument("g_alpha, g_rho_c and g_rho_a: give all three or none");
  in.g_w_rec = data_of<Real>(g_w_rec, "g_w_rec", nn, true);
  if (in.g_w_rec && in.d_post) throw std::invalid_argument("g_w_rec: only with uniform delays (d_rec None)");
  if (g_w_in.is_none() != x.is_none())
    throw std::invalid_argument(x.is_none() ? "g_w_in: needs x, the layer's input" : "x: only with g_w_in");
  if (!x.is_none()) set_input(L, x, x_batch_major);
  in.g_w_in = data_of<Real>(g_w_in, "g_w_in", {static_cast<py::ssize_t>(L.n_in), N}, true);
  check_delays(nullptr, 0, d_in_uniform, 0, "d_in_uniform");
  L.d_in_uniform = d_in_uniform;
  py::gil_scoped_release release;
  ahpsim::bptt::backward(L, in, gIp, std::max(1u, n_threads));
}

template <class Real>
void delayed_outer(py::object s, py::object g, py::object d, std::int32_t d_uniform, py::object out,
                   bool s_batch_major, py::ssize_t n_pre, unsigned n_threads) {
  if (!py::isinstance<py::array>(s) || !py::isinstance<py::array>(g))
    throw py::type_error("s and g: expected numpy arrays");
  py::array sa = py::reinterpret_borrow<py::array>(s), ga = py::reinterpret_borrow<py::array>(g);
  if (sa.ndim() != 3 || ga.ndim() != 3)
    throw std::invalid_argument(s_batch_major ? "s and g: expected [B, T, P] and [T, B, N] arrays"
                                              : "s and g: expected [T, B, P] and [T, B, N] arrays");
  const bool bits = sa.dtype().is(py::dtype::of<std::uint64_t>());
  if (bits && (n_pre < 0 || s_batch_major))
    throw std::invalid_argument("s: spike bits (uint64) need n_pre, the number of presynaptic neurons, and the "
                                "time-major layout");
  if (!bits && n_pre >= 0)
    throw std::invalid_argument("n_pre: only with spike bits (uint64 s); s of another dtype gives P by its shape");
  if (!bits) check_events_dtype<Real>(sa, "s");
  const py::ssize_t T = ga.shape(0), B = ga.shape(1), P = bits ? n_pre : sa.shape(2), N = ga.shape(2);
  const std::vector<py::ssize_t> s_shape = s_batch_major ? std::vector<py::ssize_t>{B, T, P}
                                                         : std::vector<py::ssize_t>{T, B, P};
  ahpsim::bptt::Activity<Real> act;
  act.batch_major = s_batch_major;
  if (bits)
    act.bits = data_of<std::uint64_t>(s, "s", {T, B, ahpsim::bptt::spike_words(P)});
  else if (is_bool(sa))
    act.events = reinterpret_cast<const std::uint8_t*>(data_of<bool>(s, "s", s_shape));
  else
    act.s = data_of<Real>(s, "s", s_shape);
  const Real* gp = data_of<Real>(g, "g", {T, B, N});
  const std::int32_t* dp = data_of<std::int32_t>(d, "d", {P, N});
  Real* op = data_of<Real>(out, "out", {P, N}, true);
  if (!op) throw std::invalid_argument("out: required");
  check_delays(dp, static_cast<std::size_t>(P * N), d_uniform, 0, "d");
  py::gil_scoped_release release;
  ahpsim::bptt::delayed_outer<Real>(T, B, P, N, act, gp, dp, d_uniform, op, std::max(1u, n_threads));
}

bool is_float32(const py::object& a) {
  if (!py::isinstance<py::array>(a)) throw py::type_error("expected a numpy array");
  const py::dtype dt = py::reinterpret_borrow<py::array>(a).dtype();
  if (dt.is(py::dtype::of<float>())) return true;
  if (dt.is(py::dtype::of<double>())) return false;
  throw py::type_error("expected float32 or float64 arrays, got " + std::string(py::str(dt)));
}

}  // namespace

void register_training(py::module_& m) {
  m.def(
      "layer_forward",
      [](py::object z, py::object v, py::object A, py::object free, py::object alpha, py::object v_th,
         py::object rho_c, py::object beta_c, py::object rho_a, py::object beta_a, py::object bias, std::int32_t n_ref,
         bool reset_zero, bool has_ahp, bool has_alif, py::object w_rec, py::object d_rec, std::int32_t d_rec_uniform,
         py::object x, py::object w_in, py::object d_in, std::int32_t d_in_uniform, py::object E, py::object y,
         py::object w_out, py::object b_out, py::object kappa, std::int32_t d_out, bool x_batch_major,
         py::object z_bits, unsigned n_threads, bool refractory_clamp) {
        auto fn = is_float32(z) ? &layer_forward<float> : &layer_forward<double>;
        fn(z, v, A, free, alpha, v_th, rho_c, beta_c, rho_a, beta_a, bias, n_ref, reset_zero, has_ahp, has_alif,
           w_rec, d_rec, d_rec_uniform, x, w_in, d_in, d_in_uniform, E, y, w_out, b_out, kappa, d_out, x_batch_major,
           z_bits, n_threads, refractory_clamp);
      },
      py::kw_only(), py::arg("z"), py::arg("v"), py::arg("A"), py::arg("free"), py::arg("alpha"), py::arg("v_th"),
      py::arg("rho_c"), py::arg("beta_c"), py::arg("rho_a"), py::arg("beta_a"), py::arg("bias"), py::arg("n_ref"),
      py::arg("reset_zero"), py::arg("has_ahp"), py::arg("has_alif"), py::arg("w_rec"), py::arg("d_rec"),
      py::arg("d_rec_uniform"), py::arg("x"), py::arg("w_in"), py::arg("d_in"), py::arg("d_in_uniform"), py::arg("E"),
      py::arg("y") = py::none(), py::arg("w_out") = py::none(), py::arg("b_out") = py::none(),
      py::arg("kappa") = py::none(), py::arg("d_out") = 1, py::arg("x_batch_major") = false,
      py::arg("z_bits") = py::none(), py::arg("n_threads") = 1, py::arg("refractory_clamp") = false,
      "Forward pass of one recurrent spiking layer over [T, B]: writes the spikes z and, where given (not None), "
      "the voltages v, ALIF thresholds A and non-refractory flags free in place; weights and delays pre-major "
      "([pre, post]); with w_out ([n_out, N]) also the leaky readout y [T, B, n_out]. x: input values "
      "[T, B, n_in] of z's dtype, or bool spikes (events of weight 1); [B, T, n_in] with x_batch_major. z_bits "
      "(uint64 [T, B, ceil(N / 64)], optional): the spikes as bits, for delayed_outer. refractory_clamp: v held "
      "at 0 during the n_ref refractory steps (else it integrates and only its spikes are blocked)");
  m.def(
      "layer_backward",
      [](py::object gI, py::object G, py::object z, py::object v, py::object A, py::object free, py::object alpha,
         py::object v_th, py::object rho_c, py::object beta_c, py::object rho_a, py::object beta_a, bool reset_zero,
         bool detach_reset, bool has_ahp, bool has_alif, py::object w_rec, py::object d_rec,
         std::int32_t d_rec_uniform, int surrogate, double dampening, double slope, double sigma, py::object G_rate,
         py::object Gy, py::object gU, py::object w_out, py::object kappa, std::int32_t d_out, py::object g_alpha,
         py::object g_rho_c, py::object g_rho_a, unsigned n_threads, bool refractory_clamp, py::object z_bits,
         py::object g_w_rec, py::object g_w_in, py::object x, bool x_batch_major, std::int32_t d_in_uniform,
         bool Gy_batch_major) {
        auto fn = is_float32(z) ? &layer_backward<float> : &layer_backward<double>;
        fn(gI, G, z, v, A, free, alpha, v_th, rho_c, beta_c, rho_a, beta_a, reset_zero, detach_reset, has_ahp,
           has_alif, w_rec, d_rec, d_rec_uniform, surrogate, dampening, slope, sigma, G_rate, Gy, gU, w_out, kappa,
           d_out, g_alpha, g_rho_c, g_rho_a, n_threads, refractory_clamp, z_bits, g_w_rec, g_w_in, x, x_batch_major,
           d_in_uniform, Gy_batch_major);
      },
      py::kw_only(), py::arg("gI"), py::arg("G"), py::arg("z"), py::arg("v"), py::arg("A"), py::arg("free"),
      py::arg("alpha"), py::arg("v_th"), py::arg("rho_c"), py::arg("beta_c"), py::arg("rho_a"), py::arg("beta_a"),
      py::arg("reset_zero"), py::arg("detach_reset"), py::arg("has_ahp"), py::arg("has_alif"), py::arg("w_rec"),
      py::arg("d_rec"), py::arg("d_rec_uniform"), py::arg("surrogate"), py::arg("dampening"), py::arg("slope") = 10.0,
      py::arg("sigma") = 0.5, py::arg("G_rate") = py::none(), py::arg("Gy") = py::none(), py::arg("gU") = py::none(),
      py::arg("w_out") = py::none(), py::arg("kappa") = py::none(), py::arg("d_out") = 1,
      py::arg("g_alpha") = py::none(), py::arg("g_rho_c") = py::none(), py::arg("g_rho_a") = py::none(),
      py::arg("n_threads") = 1, py::arg("refractory_clamp") = false, py::arg("z_bits") = py::none(),
      py::arg("g_w_rec") = py::none(), py::arg("g_w_in") = py::none(), py::arg("x") = py::none(),
      py::arg("x_batch_major") = false, py::arg("d_in_uniform") = 0, py::arg("Gy_batch_major") = false,
      "BPTT of one recurrent spiking layer: writes gI = dL/dI [T, B, N] given G = dL/dz from the layer's users "
      "(None: zero), G_rate (a per-neuron dL/dz added at every step) and the forward pass's z, v, A (ALIF) and "
      "free (n_ref > 0); w_rec and d_rec post-major ([post, pre], torch's layout); with a readout (w_out "
      "[n_out, N], kappa, d_out) also gU = dL/d(readout input) [T, B, n_out] from Gy = dL/dy ([B, T, n_out] "
      "with Gy_batch_major); with g_alpha, "
      "g_rho_c, g_rho_a ([B, N], zeroed by the caller) also the per-trial gradients w.r.t. the decays; "
      "refractory_clamp as in layer_forward (needs free); z_bits (optional): layer_forward's spike bits, read "
      "instead of z (z then gives only the shape and dtype); g_w_rec [N, N] and g_w_in [n_in, N] (optional, "
      "pre-major, added to; uniform delays d_rec_uniform and d_in_uniform; g_w_in with the input x as in "
      "layer_forward): the weight gradients sum_{t,b} s[t, b, j] gI[t + d, b, i], fused into the pass "
      "(the same sums as delayed_outer in another order; independent of n_threads)");
  m.def(
      "delayed_outer",
      [](py::object s, py::object g, py::object d, std::int32_t d_uniform, py::object out, bool s_batch_major,
         py::ssize_t n_pre, unsigned n_threads) {
        auto fn = is_float32(g) ? &delayed_outer<float> : &delayed_outer<double>;
        fn(s, g, d, d_uniform, out, s_batch_major, n_pre, n_threads);
      },
      py::kw_only(), py::arg("s"), py::arg("g"), py::arg("d"), py::arg("d_uniform"), py::arg("out"),
      py::arg("s_batch_major") = false, py::arg("n_pre") = -1, py::arg("n_threads") = 1,
      "out[j, i] += sum_{t,b} s[t, b, j] * g[t + d[j, i], b, i] (t + d < T): spike-sparse weight gradient; s of "
      "g's dtype or bool (events of weight 1), [T, B, P] or [B, T, P] with s_batch_major, or layer_forward's "
      "z_bits (uint64 [T, B, ceil(P / 64)], with n_pre = P)");
}
