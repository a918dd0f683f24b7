// Unit tests of the core data structures: CSR-by-source projection with delay segments, the Poisson
// sampler and the per-trial random streams. Plain asserts; run by ctest (AHPSIM_CPP_TESTS=ON).
#include <cassert>
#include <cmath>
#include <cstdio>
#include <map>
#include <tuple>
#include <vector>

#include "ahpsim/network.hpp"
#include "ahpsim/projection.hpp"
#include "ahpsim/rng.hpp"

#define CHECK(cond)                                                             \
  do {                                                                          \
    if (!(cond)) {                                                              \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      return 1;                                                                 \
    }                                                                           \
  } while (0)

static int test_projection_grouping() {
  // 4 sources, synapses given in scrambled order, mixed delays, one multapse.
  std::vector<std::uint32_t> pre = {2, 0, 2, 1, 0, 2, 2, 0};
  std::vector<std::uint32_t> post = {1, 3, 0, 2, 1, 1, 2, 1};
  std::vector<float> w = {1, 2, 3, 4, 5, 6, 7, 8};
  std::vector<std::uint16_t> d = {2, 1, 2, 5, 1, 1, 2, 1};
  auto p = ahpsim::build_projection<float>(4, pre.size(), pre.data(), post.data(), w.data(), d.data(), 100);
  CHECK(p.n_synapses() == 8);
  CHECK(p.seg_ptr.size() == 5);
  // source 3 has no synapses, so no segments
  CHECK(p.seg_ptr[3] == p.seg_ptr[4]);
  // every (pre, post, delay, weight) tuple survives exactly once
  std::multimap<std::tuple<int, int, int>, float> in, out;
  for (std::size_t k = 0; k < pre.size(); ++k) in.emplace(std::make_tuple(pre[k], post[k] + 100, d[k]), w[k]);
  for (std::uint32_t r = 0; r < 4; ++r) {
    int last_delay = -1;
    for (auto s = p.seg_ptr[r]; s < p.seg_ptr[r + 1]; ++s) {
      CHECK(static_cast<int>(p.seg_delay[s]) > last_delay);  // one segment per delay, ascending
      last_delay = p.seg_delay[s];
      std::uint32_t last_t = 0;
      for (auto k = p.seg_begin(s); k < p.seg_end[s]; ++k) {
        CHECK(p.target[k] >= last_t);  // sorted by target inside a segment
        last_t = p.target[k];
        out.emplace(std::make_tuple(static_cast<int>(r), static_cast<int>(p.target[k]), p.seg_delay[s]), p.weight[k]);
      }
    }
  }
  CHECK(in == out);
  // multapse order kept: (0 -> 1, delay 1) has weights 5 then 8
  CHECK(p.seg_delay[p.seg_ptr[0]] == 1);
  CHECK(p.max_delay() == 5 && p.min_delay() == 1);
  return 0;
}

static int test_poisson_table_moments() {
  for (double lam : {0.0, 0.02, 1.0, 7.5, 60.0}) {
    ahpsim::PoissonTable tab(lam);
    ahpsim::Rng rng(42, 0, 0);
    const int n = 200000;
    double s = 0, s2 = 0;
    for (int i = 0; i < n; ++i) {
      const double k = tab.sample(rng);
      s += k;
      s2 += k * k;
    }
    const double mean = s / n, var = s2 / n - mean * mean;
    CHECK(std::fabs(mean - lam) < 5 * std::sqrt((lam + 1e-12) / n) + 1e-12);
    CHECK(std::fabs(var - lam) < 0.05 * lam + 1e-3);
  }
  return 0;
}

static int test_rng_streams_independent_of_order() {
  ahpsim::Rng a(7, 1, 3), b(7, 1, 3), c(7, 1, 4);
  for (int i = 0; i < 100; ++i) CHECK(a.next() == b.next());
  ahpsim::Rng a2(7, 1, 3);
  bool differs = false;
  for (int i = 0; i < 10; ++i) differs |= a2.next() != c.next();
  CHECK(differs);
  for (int i = 0; i < 1000; ++i) {
    const auto u = a.below(10);
    CHECK(u < 10);
  }
  return 0;
}

static int test_ring_buffer_delivery() {
  // One source neuron driven above threshold at step 0 projects with delays 1 and 3 onto readouts.
  ahpsim::Network<double> net(1.0, 0);
  ahpsim::PopulationParams src;
  src.kind = ahpsim::ModelKind::LIF;
  src.tau_m = {0.0};
  src.v_th = {0.5};
  src.bias = {0.0};
  src.n_ref = {0};
  ahpsim::PopulationParams ro;
  ro.kind = ahpsim::ModelKind::Readout;
  ro.tau_m = {0.0, 0.0};
  ro.bias = {0.0, 0.0};
  net.add_input("x", 1);
  net.add_population("a", 1, src);
  net.add_population("o", 2, ro);
  std::uint32_t i0 = 0, j0 = 0, j1 = 1;
  double w1 = 1.0, w3 = 2.0;
  std::uint16_t d0 = 0, d1 = 1, d3 = 3;
  net.connect(true, 0, 0, 1, &i0, &j0, &w1, &d0);
  net.connect(false, 0, 1, 1, &i0, &j0, &w1, &d1);
  net.connect(false, 0, 1, 1, &i0, &j1, &w3, &d3);
  net.init_state(1);
  std::int64_t ptr[7] = {0, 1, 1, 1, 1, 1, 1};
  std::int32_t ch = 0;
  double val = 1.0;
  ahpsim::InputEvents<double> ev{0, 1, ptr, &ch, &val};
  ahpsim::RecordSpec rec;
  auto out = net.run(6, {ev}, rec, 1);
  // y_trace [T, 2]: readout 0 sees the spike at step 1, readout 1 at step 3
  for (int t = 0; t < 6; ++t) {
    CHECK(out.y_trace[t * 2 + 0] == (t == 1 ? 1.0 : 0.0));
    CHECK(out.y_trace[t * 2 + 1] == (t == 3 ? 2.0 : 0.0));
  }
  CHECK(net.ring_slots() == 4);
  return 0;
}

int main() {
  int fails = 0;
  fails += test_projection_grouping();
  fails += test_poisson_table_moments();
  fails += test_rng_streams_independent_of_order();
  fails += test_ring_buffer_delivery();
  if (fails == 0) std::printf("all C++ core tests passed\n");
  return fails;
}
