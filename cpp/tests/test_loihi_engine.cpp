// Unit test of the Loihi integer engine (plain asserts, no framework).
// Build alone: g++ -std=c++17 -O2 -pthread -Icpp/include cpp/tests/test_loihi_engine.cpp && ./a.out
#undef NDEBUG
#include <cassert>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "ahpsim/loihi/engine.hpp"

using namespace ahpsim::loihi;

static CompartmentSpec cx(int n, int du, int dv, int vth, int bias, int bexp, int ref = 1) {
  CompartmentSpec c;
  c.du.assign(n, du);
  c.dv.assign(n, dv);
  c.vth_mant.assign(n, vth);
  c.bias_mant.assign(n, bias);
  c.bias_exp.assign(n, bexp);
  c.refractory.assign(n, ref);
  c.spiking.assign(n, 1);
  c.parent.assign(n, -1);
  c.join.assign(n, 0);
  return c;
}

template <class F>
static bool throws_with(F f, const std::string& needle) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return std::string(e.what()).find(needle) != std::string::npos;
  }
  return false;
}

static void test_primitives() {
  using namespace ahpsim::loihi::bits;
  static_assert(kStateMax == 8388607 && kVthMantMax == 131071 && kDecayUnity == 4096, "widths");
  assert(decay(1000, 2048) == 500);
  assert(decay(-1001, 2048) == -500);   // toward zero, not floor (-501)
  assert(decay(7, 4096) == 0);
  assert(wrap_bits(kStateMax + 1, 24) == kStateMin);
  assert(wrap_bits(-kStateMax - 2, 24) == kStateMax);
  assert(wrap32(std::int64_t{1} << 31) == -(std::int64_t{1} << 31));
  assert(shift_floor(-3, -1) == -2 && shift_toward_zero(-3, -1) == -1);
  // Lava's one-shot wrap: +2^23 stays, -2^23 becomes +2^23, 2^23 + 5 becomes -2^23 + 5
  assert(LavaRules::update_u(0, 4095, 1 << 23) == (1 << 23));
  assert(LavaRules::update_u(0, 4095, -(1 << 23)) == (1 << 23));
  assert(LavaRules::update_u(0, 4095, (1 << 23) + 5) == -(1 << 23) + 5);
  assert(Loihi1Rules::update_u(0, 4096, (1 << 23) + 5) == -(1 << 23) + 5);
  // Lava: du = 0 still decays (ds_offset = 1): 4096 * 4095 >> 12 = 4095
  assert(LavaRules::update_u(4096, 0, 0) == 4095 && Loihi1Rules::update_u(4096, 0, 0) == 4096);
  assert(Loihi1Rules::synapse_weight(-96, -4) == -384 && Loihi1Rules::synapse_weight(3, -8) == 0);
  // the 6 low bits of an effective weight are zero: 3 * 2^(6-2) = 48 -> 0, -3 -> floor(-0.75) * 64
  assert(Loihi1Rules::synapse_weight(3, -2) == 0 && Loihi1Rules::synapse_weight(-3, -2) == -64);
  assert(Loihi1Rules::synapse_weight(255, 7) == 255 * 8192 && Loihi1Rules::synapse_weight(5, -1) == 128);
}

// one compartment driven by its bias: v_t = decay(v_{t-1}) + bias, spike and reset to 0
static void test_bias_spike_refractory() {
  NetworkSpec s;
  s.cx = cx(1, 4096, 2048, 1, 50, 1, /*ref=*/3);  // bias 100, threshold 64
  Engine<Loihi1Rules> e(s);
  auto out = e.run(8, 1, nullptr, true);
  // t0: v=100 > 64 spike -> 0; t1,t2 held (refractory 3 -> 2 extra steps); t3: v=100 spike ...
  const int sp[8] = {1, 0, 0, 1, 0, 0, 1, 0};
  for (int t = 0; t < 8; ++t) {
    assert(out.spikes[t] == sp[t]);
    assert(out.v[t] == 0);
  }
  s.cx.vth_mant[0] = 3;  // 192: v = 100, 150, 175, 187, 193 -> spike at t4
  auto out2 = Engine<Loihi1Rules>(s).run(5, 1, nullptr, true);
  assert(out2.v[0] == 100 && out2.v[1] == 150 && out2.v[2] == 175 && out2.v[3] == 187);
  assert(out2.spikes[3] == 0 && out2.spikes[4] == 1 && out2.v[4] == 0);
}

// two-compartment AHP neuron: soma spike -> aux (one step later) -> ADD join into soma
static void test_ahp_join() {
  NetworkSpec s;
  s.n_inputs = 1;
  s.cx = cx(2, 4096, 0, 1, 0, 0);
  s.cx.spiking[0] = 0;      // aux: never spikes
  s.cx.parent[0] = 1;       // soma is its parent
  s.cx.join[1] = 1;         // ADD
  s.cx.dv[0] = 2048;        // aux voltage halves each step
  s.cx.vth_mant[0] = 0;
  ProjectionSpec in{true, 0, 1, 1, 1, 0, {0}, {0}, {2}, {0}, "in"};          // +128 to the soma
  ProjectionSpec ahp{false, 1, 1, 0, 1, -4, {0}, {0}, {-96}, {0}, "ahp"};  // -384 to the aux
  s.projections = {in, ahp};
  Engine<Loihi1Rules> e(s);
  std::vector<std::uint8_t> x = {1, 0, 0, 1};
  auto o = e.run(4, 1, x.data(), true);
  // t0: soma u=128, v=128 > 64 -> spike, v=0.  t1: aux u=-384 v=-384; soma v=0+0-384 = -384
  // t2: aux v=-192; soma v=-384-192=-576. t3: aux v=-96; soma v=-576+128-96=-544
  assert(o.spikes[0 * 2 + 1] == 1);
  assert(o.v[1 * 2 + 0] == -384 && o.v[1 * 2 + 1] == -384);
  assert(o.v[2 * 2 + 0] == -192 && o.v[2 * 2 + 1] == -576);
  assert(o.v[3 * 2 + 0] == -96 && o.v[3 * 2 + 1] == -544);
  for (int t = 0; t < 4; ++t) assert(o.spikes[t * 2 + 0] == 0);
}

static void test_delay_and_lava_exponent() {
  // delay 5 from a compartment spike at t=0 arrives at t=6 (1 + 5)
  NetworkSpec s;
  s.cx = cx(2, 4096, 4095, 131071, 0, 0);
  s.cx.bias_mant[0] = 4095;
  s.cx.bias_exp[0] = 7;
  s.cx.vth_mant[0] = 1;
  ProjectionSpec p{false, 0, 1, 1, 1, 0, {0}, {0}, {1}, {5}, "d"};
  s.projections = {p};
  auto o = Engine<Loihi1Rules>(s).run(8, 1, nullptr, true);
  for (int t = 0; t < 8; ++t) assert(o.spikes[t * 2] == 1);
  for (int t = 0; t < 6; ++t) assert(o.u[t * 2 + 1] == 0);
  assert(o.u[6 * 2 + 1] == 64 && o.u[7 * 2 + 1] == 64);
  // Lava: exponent acts on the summed mantissas: (3 + 3) >> 2 = 1 (per synapse it would be 0)
  NetworkSpec l;
  l.n_inputs = 2;
  l.cx = cx(1, 4095, 4095, 131071, 0, 0);
  ProjectionSpec q{true, 0, 2, 0, 1, -2, {0, 1}, {0, 0}, {3, 3}, {0, 0}, "q"};
  l.projections = {q};
  std::vector<std::uint8_t> x = {1, 1, 0, 0};
  auto ol = Engine<LavaRules>(l).run(2, 1, x.data(), true);
  assert(ol.u[0] == 0 && ol.u[1] == 64);  // one step of Dense latency
}

// trials are independent: threads must not change the result; each trial starts from zero
static void test_trials_and_threads() {
  NetworkSpec s;
  s.n_inputs = 4;
  s.cx = cx(6, 1000, 300, 2, 10, 2, 2);
  ProjectionSpec in{true, 0, 4, 0, 6, 1, {}, {}, {}, {}, "in"};
  ProjectionSpec rec{false, 0, 6, 0, 6, 0, {}, {}, {}, {}, "rec"};
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 6; ++j) {
      in.pre.push_back(i); in.post.push_back(j); in.weight.push_back((i * 37 + j * 11) % 200 - 50); in.delay.push_back((i + j) % 3);
    }
  for (int i = 0; i < 6; ++i)
    for (int j = 0; j < 6; ++j)
      if (i != j) {
        rec.pre.push_back(i); rec.post.push_back(j); rec.weight.push_back((i * 53 + j * 7) % 255 - 127); rec.delay.push_back((i * j) % 5);
      }
  s.projections = {in, rec};
  Engine<Loihi1Rules> e(s);
  const int T = 50, B = 5;
  std::vector<std::uint8_t> x(B * T * 4);
  for (std::size_t k = 0; k < x.size(); ++k) x[k] = (k * 2654435761u >> 7) % 5 == 0;
  for (int b = 0; b < 4 * T; ++b) x[static_cast<std::size_t>(2 * T * 4 + b)] = x[static_cast<std::size_t>(b)];  // trial 2 = trial 0
  auto o1 = e.run(T, B, x.data(), true, 1);
  auto o3 = e.run(T, B, x.data(), true, 3);
  assert(o1.spikes == o3.spikes && o1.u == o3.u && o1.v == o3.v);
  long spikes = 0;
  for (auto v : o1.spikes) spikes += v;
  assert(spikes > 10);
  const std::size_t per = static_cast<std::size_t>(T) * 6;
  for (std::size_t k = 0; k < per; ++k) assert(o1.v[k] == o1.v[2 * per + k] && o1.spikes[k] == o1.spikes[2 * per + k]);

  // stateful: advance(a) + advance(T - a) == run(T) bit for bit (pending delayed spikes and
  // refractory counters carry over), for any split, thread count and snapshot / restore
  for (int a : {0, 1, 7, 23, 49, 50}) {
    e.init_state(B);
    std::vector<std::uint8_t> x1, x2;
    for (int b = 0; b < B; ++b) {
      const auto* xb = x.data() + static_cast<std::size_t>(b * T * 4);
      x1.insert(x1.end(), xb, xb + a * 4);
      x2.insert(x2.end(), xb + a * 4, xb + T * 4);
    }
    auto p1 = e.advance(a, x1.data(), true, a % 2 ? 2 : 1);
    const auto snap = e.state();
    auto p2 = e.advance(T - a, x2.data(), true, 3);
    assert(e.t() == T && e.n_trials() == B);
    for (int b = 0; b < B; ++b)
      for (int t = 0; t < T; ++t)
        for (int c = 0; c < 6; ++c) {
          const std::size_t k = (static_cast<std::size_t>(b) * T + t) * 6 + c;
          const std::size_t k1 = (static_cast<std::size_t>(b) * a + t) * 6 + c;
          const std::size_t k2 = (static_cast<std::size_t>(b) * (T - a) + (t - a)) * 6 + c;
          if (t < a) assert(p1.v[k1] == o1.v[k] && p1.u[k1] == o1.u[k] && p1.spikes[k1] == o1.spikes[k]);
          else assert(p2.v[k2] == o1.v[k] && p2.u[k2] == o1.u[k] && p2.spikes[k2] == o1.spikes[k]);
        }
    e.set_state(snap);
    assert(e.t() == a);
    auto p3 = e.advance(T - a, x2.data(), true, 1);
    assert(p3.spikes == p2.spikes && p3.u == p2.u && p3.v == p2.v);
  }
  e.reset_state();
  assert(!e.has_state() && e.t() == 0);
  assert(throws_with([&] { e.advance(1, nullptr, true); }, "init_state"));
}

static void test_validation() {
  NetworkSpec s;
  s.cx = cx(1, 4096, 4096, 1, 0, 0);
  assert(throws_with([&] { Engine<Loihi1Rules> e(s); }, "dv[compartment 0] = 4096 is out of range [0, 4095]"));
  s.cx = cx(1, 4096, 0, 1, 0, 0);
  assert(throws_with([&] { Engine<LavaRules> e(s); }, "du[compartment 0] = 4096 is out of range [0, 4095]"));
  s.cx.bias_mant[0] = 5000;
  assert(throws_with([&] { Engine<Loihi1Rules> e(s); }, "bias_mant"));
  s.cx = cx(2, 0, 0, 1, 0, 0);
  s.projections = {ProjectionSpec{false, 0, 1, 1, 1, 8, {0}, {0}, {1}, {0}, "p"}};
  assert(throws_with([&] { Engine<Loihi1Rules> e(s); }, "weight_exponent[projection 0 'p'] = 8 is out of range [-8, 7]"));
  s.projections[0].weight_exp = 0;
  s.projections[0].weight[0] = -256;
  assert(throws_with([&] { Engine<Loihi1Rules> e(s); }, "weight_mantissa"));
  Engine<LavaRules> ok(s);  // -256 is valid in Lava's mixed mode
  s.projections[0].delay[0] = 1;
  assert(throws_with([&] { Engine<LavaRules> e(s); }, "delay"));
  s.projections[0].weight[0] = 1;
  s.projections[0].delay[0] = 63;
  assert(throws_with([&] { Engine<Loihi1Rules> e(s); }, "delay[projection 0 'p'] (rule set loihi1) = 63 is out of range [0, 62]"));
}

// Trials side by side in double lanes give the scalar step's bits: random networks with
// two-compartment neurons, refractoriness, delays, 24-bit wraps of u and clipped voltages, for 1-11
// trials (full and partial groups of lanes), 1-3 threads, and the stateful interface split anywhere.
static void test_trial_lanes() {
  std::uint64_t seed = 12345;
  auto rnd = [&](int lo, int hi) {  // uniform in [lo, hi]
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    return lo + static_cast<int>((seed >> 33) % static_cast<std::uint64_t>(hi - lo + 1));
  };
  for (int net = 0; net < 6; ++net) {
    const int n = 24, n_in = 7, T = 60;
    NetworkSpec s;
    s.n_inputs = n_in;
    s.cx = cx(n, 0, 0, 0, 0, 0);
    for (int c = 0; c < n; ++c) {
      s.cx.du[c] = rnd(0, 4096);
      s.cx.dv[c] = rnd(0, 4095);
      s.cx.vth_mant[c] = net == 5 ? 131071 : rnd(1, 400);  // net 5: huge threshold, voltages clip
      s.cx.bias_mant[c] = rnd(-300, 300);
      s.cx.bias_exp[c] = rnd(0, 6);
      s.cx.refractory[c] = rnd(1, 5);
    }
    for (int c = 0; c + 1 < n; c += 3) {  // compartment c joins c + 1 (the AHP layout)
      s.cx.spiking[c] = 0;
      s.cx.parent[c] = c + 1;
      s.cx.join[c + 1] = 1;
    }
    const int big = net >= 4 ? 7 : 2;  // nets 4, 5: large exponents, u wraps at 24 bits
    ProjectionSpec in{true, 0, n_in, 0, n, big, {}, {}, {}, {}, "in"};
    ProjectionSpec rec{false, 0, n, 0, n, net % 3 - 1, {}, {}, {}, {}, "rec"};
    for (int i = 0; i < n_in; ++i)
      for (int j = 0; j < n; ++j)
        if (rnd(0, 2) == 0) {
          in.pre.push_back(i); in.post.push_back(j); in.weight.push_back(rnd(-255, 255)); in.delay.push_back(rnd(0, 4));
        }
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j)
        if (rnd(0, 3) == 0) {
          rec.pre.push_back(i); rec.post.push_back(j); rec.weight.push_back(rnd(-255, 255)); rec.delay.push_back(rnd(0, 6));
        }
    s.projections = {in, rec};
    Engine<Loihi1Rules> e(s);
    for (int B : {1, 2, 3, 8, 9, 11}) {
      std::vector<std::uint8_t> x(static_cast<std::size_t>(B * T * n_in));
      for (auto& xi : x) xi = rnd(0, 3) == 0;
      e.set_trial_lanes(false);
      const auto ref = e.run(T, B, x.data(), true, 1);
      e.set_trial_lanes(true);
      for (int th : {1, 2, 3}) {
        const auto o = e.run(T, B, x.data(), true, th);
        assert(o.spikes == ref.spikes && o.u == ref.u && o.v == ref.v);
        assert(o.u_wraps == ref.u_wraps && o.v_saturations == ref.v_saturations);
        assert(o.spike_counts == ref.spike_counts && o.input_counts == ref.input_counts);
      }
      // the counts are the spike arrays summed over trials and steps
      std::vector<std::uint64_t> sc(n, 0), ic(n_in, 0);
      for (std::size_t k = 0; k < ref.spikes.size(); ++k) sc[k % n] += ref.spikes[k];
      for (std::size_t k = 0; k < x.size(); ++k) ic[k % n_in] += x[k];
      assert(ref.spike_counts == sc && ref.input_counts == ic);
      // stateful, split at a: the lanes' state goes back into the trials' states exactly
      const int a = rnd(1, T - 1);
      std::vector<std::uint8_t> x1, x2;
      for (int b = 0; b < B; ++b) {
        const auto* xb = x.data() + static_cast<std::size_t>(b * T * n_in);
        x1.insert(x1.end(), xb, xb + a * n_in);
        x2.insert(x2.end(), xb + a * n_in, xb + T * n_in);
      }
      e.init_state(B);
      e.set_trial_lanes(B % 2 == 0);  // one half on either path
      e.advance(a, x1.data(), true, 2);
      e.set_trial_lanes(B % 2 != 0);
      const auto p2 = e.advance(T - a, x2.data(), true, 1);
      e.set_trial_lanes(true);
      for (int b = 0; b < B; ++b)
        for (int t = a; t < T; ++t)
          for (int c = 0; c < n; ++c) {
            const std::size_t k = (static_cast<std::size_t>(b) * T + t) * n + c;
            const std::size_t k2 = (static_cast<std::size_t>(b) * (T - a) + (t - a)) * n + c;
            assert(p2.v[k2] == ref.v[k] && p2.u[k2] == ref.u[k] && p2.spikes[k2] == ref.spikes[k]);
          }
    }
    long wraps = 0, sats = 0;
    e.set_trial_lanes(true);
    std::vector<std::uint8_t> x(static_cast<std::size_t>(4 * T * n_in), 1);
    const auto o = e.run(T, 4, x.data(), false, 1);
    for (auto w : o.u_wraps) wraps += w;
    for (auto w : o.v_saturations) sats += w;
    if (net >= 4) assert(wraps > 0);   // the rare paths were exercised
    if (net == 5) assert(sats > 0);
  }
}

int main() {
  test_primitives();
  test_bias_spike_refractory();
  test_ahp_join();
  test_delay_and_lava_exponent();
  test_trials_and_threads();
  test_trial_lanes();
  test_validation();
  std::puts("test_loihi_engine: ok");
  return 0;
}
