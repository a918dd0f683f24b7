// Synapses of one projection, grouped by source neuron (CSR) and, inside a row, by delay.
//
// Layout (per synapse: one uint32 target + one weight = 8 bytes in float32; 4 bytes when all weights
// of the projection are equal and stored once):
//   row r (source neuron r of the pre group) owns segments [seg_ptr[r], seg_ptr[r+1]);
//   segment s has one delay seg_delay[s] (steps) and covers synapses [seg_begin(s), seg_end[s]);
//   segments are contiguous, so seg_begin(s) = (s == 0 ? 0 : seg_end[s-1]).
// A spike of source r at step t adds weight[k] to the ring-buffer slot (t + delay) at target[k].
#pragma once

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

namespace ahpsim {

template <class Real>
struct Projection {
  std::uint32_t pre_group = 0;   // index of the source group (input group or population)
  bool pre_is_input = false;     // source is an external input group
  std::uint32_t post_pop = 0;    // index of the target population
  std::uint32_t n_pre = 0;

  std::vector<std::uint64_t> seg_ptr;    // [n_pre + 1] first segment of each row
  std::vector<std::uint16_t> seg_delay;  // [n_seg] delay of the segment (steps)
  std::vector<std::uint64_t> seg_end;    // [n_seg] one past the last synapse of the segment
  std::vector<std::uint32_t> target;     // [n_syn] global index of the target neuron
  std::vector<Real> weight;              // [n_syn] weight (units of the target's input current);
                                         // empty when all synapses share hom_weight
  Real hom_weight = Real(0);             // the shared weight of a homogeneous projection

  bool homogeneous() const { return weight.empty(); }
  Real weight_of(std::uint64_t k) const { return weight.empty() ? hom_weight : weight[k]; }
  // Store one shared weight when all synapses have the same one (NEST's static_synapse_hom_w):
  // halves the memory per synapse in float32.
  void compress_weights() {
    if (weight.empty()) return;
    for (const Real w : weight)
      if (!(w == weight[0])) return;
    hom_weight = weight[0];
    std::vector<Real>().swap(weight);
  }

  // Dense rows (an acceleration structure, built when a projection is at least half full): segment s
  // also holds its weights as one contiguous run over targets [dense_t0[s], dense_t0[s] + dense_len[s])
  // starting at dense_w[dense_off[s]], with 0 where there is no synapse. Delivering such a run is a
  // vectorizable loop instead of a scatter; adding 0 leaves every other target's sum unchanged, so
  // the result is bit-identical to the sparse path.
  std::vector<Real> dense_w;
  std::vector<std::uint64_t> dense_off;
  std::vector<std::uint32_t> dense_t0, dense_len;
  bool dense() const { return !dense_off.empty(); }

  std::uint64_t n_synapses() const { return target.size(); }
  std::uint64_t seg_begin(std::uint64_t s) const { return s == 0 ? 0 : seg_end[s - 1]; }
  std::uint16_t max_delay() const {
    std::uint16_t m = 0;
    for (auto d : seg_delay) m = std::max(m, d);
    return m;
  }
  std::uint16_t min_delay() const {
    std::uint16_t m = UINT16_MAX;
    for (auto d : seg_delay) m = std::min(m, d);
    return seg_delay.empty() ? 0 : m;
  }
  std::size_t bytes() const {
    return seg_ptr.size() * sizeof(std::uint64_t) + seg_delay.size() * sizeof(std::uint16_t) +
           seg_end.size() * sizeof(std::uint64_t) + target.size() * sizeof(std::uint32_t) +
           weight.size() * sizeof(Real) + dense_w.size() * sizeof(Real) +
           dense_off.size() * sizeof(std::uint64_t) + (dense_t0.size() + dense_len.size()) * sizeof(std::uint32_t);
  }

  // Builds the dense rows when every segment's synapses fill at least half of their target span and
  // the runs stay small; returns whether it did. Multapses (a target twice in a segment) keep the
  // projection sparse.
  bool build_dense_rows(std::uint64_t max_entries = std::uint64_t(1) << 24) {
    std::uint64_t total = 0;
    for (std::uint64_t s = 0; s < seg_end.size(); ++s) {
      const std::uint64_t b = seg_begin(s), e = seg_end[s];
      if (e == b) continue;
      for (std::uint64_t k = b + 1; k < e; ++k)
        if (target[k] == target[k - 1]) return false;
      const std::uint64_t span = std::uint64_t(target[e - 1]) - target[b] + 1;
      if (2 * (e - b) < span) return false;
      total += span;
      if (total > max_entries) return false;
    }
    dense_w.assign(total, Real(0));
    dense_off.resize(seg_end.size());
    dense_t0.resize(seg_end.size());
    dense_len.resize(seg_end.size());
    std::uint64_t off = 0;
    for (std::uint64_t s = 0; s < seg_end.size(); ++s) {
      const std::uint64_t b = seg_begin(s), e = seg_end[s];
      dense_off[s] = off;
      dense_t0[s] = e > b ? target[b] : 0;
      dense_len[s] = e > b ? target[e - 1] - target[b] + 1 : 0;
      for (std::uint64_t k = b; k < e; ++k) dense_w[off + (target[k] - target[b])] = weight_of(k);
      off += dense_len[s];
    }
    return true;
  }
};

// Builds a projection from coordinate lists (any order). Rows are sorted by (delay, target), the order
// in which spikes are delivered; equal (pre, post, delay) entries stay as separate synapses (multapses)
// in their given order. Indices must already be validated; `target_offset` maps local post indices to
// global neuron indices.
template <class Real>
Projection<Real> build_projection(std::uint32_t n_pre, std::uint64_t n_syn, const std::uint32_t* pre,
                                  const std::uint32_t* post_local, const Real* w, const std::uint16_t* delay,
                                  std::uint32_t target_offset) {
  Projection<Real> p;
  p.n_pre = n_pre;
  // Counting sort by source row: O(n_syn), stable.
  std::vector<std::uint64_t> row_start(static_cast<std::size_t>(n_pre) + 1, 0);
  for (std::uint64_t k = 0; k < n_syn; ++k) {
    if (pre[k] >= n_pre) throw std::out_of_range("pre index out of range");
    ++row_start[pre[k] + 1];
  }
  std::partial_sum(row_start.begin(), row_start.end(), row_start.begin());
  std::vector<std::uint64_t> order(n_syn);
  {
    std::vector<std::uint64_t> fill(row_start.begin(), row_start.end() - 1);
    for (std::uint64_t k = 0; k < n_syn; ++k) order[fill[pre[k]]++] = k;
  }
  // Sort each row by (delay, post); stable keeps multapses in input order.
  for (std::uint32_t r = 0; r < n_pre; ++r) {
    auto b = order.begin() + static_cast<std::ptrdiff_t>(row_start[r]);
    auto e = order.begin() + static_cast<std::ptrdiff_t>(row_start[r + 1]);
    std::stable_sort(b, e, [&](std::uint64_t a, std::uint64_t c) {
      return delay[a] != delay[c] ? delay[a] < delay[c] : post_local[a] < post_local[c];
    });
  }
  p.target.resize(n_syn);
  p.weight.resize(n_syn);
  p.seg_ptr.assign(static_cast<std::size_t>(n_pre) + 1, 0);
  for (std::uint32_t r = 0; r < n_pre; ++r) {
    p.seg_ptr[r] = p.seg_delay.size();
    for (std::uint64_t i = row_start[r]; i < row_start[r + 1]; ++i) {
      const std::uint64_t k = order[i];
      p.target[i] = target_offset + post_local[k];
      p.weight[i] = w[k];
      if (i == row_start[r] || delay[k] != p.seg_delay.back()) {
        p.seg_delay.push_back(delay[k]);
        p.seg_end.push_back(i + 1);
      } else {
        p.seg_end.back() = i + 1;
      }
    }
  }
  p.seg_ptr[n_pre] = p.seg_delay.size();
  p.seg_delay.shrink_to_fit();
  p.seg_end.shrink_to_fit();
  p.compress_weights();
  return p;
}

}  // namespace ahpsim
