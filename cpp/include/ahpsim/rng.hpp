// Random numbers for the kernel: small, fast, reproducible across platforms and thread counts.
// Every trial owns its own generator, seeded from (network seed, stream, trial), so results do not
// depend on how trials are spread over threads.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <vector>

namespace ahpsim {

inline std::uint64_t splitmix64(std::uint64_t& x) {
  std::uint64_t z = (x += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// xoshiro256++ (Blackman & Vigna), seeded through splitmix64.
class Rng {
 public:
  Rng() { seed(0, 0, 0); }
  Rng(std::uint64_t seed_, std::uint64_t stream, std::uint64_t trial) { seed(seed_, stream, trial); }

  void seed(std::uint64_t seed_, std::uint64_t stream, std::uint64_t trial) {
    std::uint64_t x = seed_ ^ (0xA0761D6478BD642FULL * (stream + 1)) ^ (0xE7037ED1A0B428DBULL * (trial + 1));
    for (auto& si : s_) si = splitmix64(x);
  }

  std::uint64_t next() {
    const std::uint64_t result = rotl(s_[0] + s_[3], 23) + s_[0];
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

  // Uniform integer in [0, n) (Lemire's nearly divisionless method).
  std::uint64_t below(std::uint64_t n) {
    __uint128_t m = static_cast<__uint128_t>(next()) * n;
    std::uint64_t l = static_cast<std::uint64_t>(m);
    if (l < n) {
      const std::uint64_t t = (0 - n) % n;
      while (l < t) {
        m = static_cast<__uint128_t>(next()) * n;
        l = static_cast<std::uint64_t>(m);
      }
    }
    return static_cast<std::uint64_t>(m >> 64);
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t s_[4];
};

// Four xoshiro256++ streams side by side, as a structure of arrays (s[word * 4 + lane]): one step of all
// four is a handful of 4-lane vector operations where the compiler may use them, and the same numbers
// where it does not. Lane l is seeded like an Rng of its own (stream and trial mixed with the lane).
struct Rng4 {
  std::uint64_t s[16];

  void seed(std::uint64_t seed_, std::uint64_t stream, std::uint64_t trial) {
    for (std::uint64_t l = 0; l < 4; ++l) {
      std::uint64_t x = seed_ ^ (0xA0761D6478BD642FULL * (stream + 1)) ^ (0xE7037ED1A0B428DBULL * (trial + 1)) ^
                        (0x8EBC6AF09C88C6E3ULL * (l + 1));
      for (int w = 0; w < 4; ++w) s[w * 4 + l] = splitmix64(x);
    }
  }
};

// Poisson(lambda) sampling by inversion of a precomputed CDF with a guide table: one 32-bit uniform
// and, on average, about one comparison per draw. The CDF is held as 32-bit fixed-point thresholds,
// so probabilities are exact to 2^-32. Built once per drive (pre-run), shared read-only by threads.
class PoissonTable {
 public:
  PoissonTable() = default;
  explicit PoissonTable(double lambda) { build(lambda); }

  void build(double lambda) {
    if (!(lambda >= 0.0) || !std::isfinite(lambda) || lambda > 1e6)
      throw std::invalid_argument("Poisson mean per step must be finite and in [0, 1e6]");
    lambda_ = lambda;
    std::vector<double> cdf;
    // Sum the pmf (log space) until the remaining tail is below 2^-40.
    const double mode = std::floor(lambda);
    double cum = 0.0;
    for (std::uint64_t k = 0;; ++k) {
      const double logp = lambda > 0 ? (static_cast<double>(k) * std::log(lambda) - lambda - std::lgamma(k + 1.0))
                                     : (k == 0 ? 0.0 : -std::numeric_limits<double>::infinity());
      cum += std::exp(logp);
      cdf.push_back(cum);
      if (static_cast<double>(k) >= mode && (1.0 - cum < 0x1.0p-40 || k > mode + 60.0 * std::sqrt(lambda + 1.0)))
        break;
    }
    // threshold[k] = P(X <= k) * 2^32, rounded; a draw u (uniform 32-bit) gives the first k with u < threshold[k].
    thr_.resize(cdf.size());
    for (std::size_t k = 0; k < cdf.size(); ++k) {
      const double t = std::round(cdf[k] / cum * 4294967296.0);
      thr_[k] = t >= 4294967296.0 ? std::uint64_t(1) << 32 : static_cast<std::uint64_t>(t);
    }
    thr_.back() = std::uint64_t(1) << 32;
    shift_ = 32;
    // A guide table much larger than the support (L1-resident): the search after the lookup almost
    // never steps, so its branch is predictable.
    while ((std::size_t(1) << (32 - shift_)) < std::max<std::size_t>(4096, 64 * thr_.size()) && shift_ > 16) --shift_;
    const std::size_t g = std::size_t(1) << (32 - shift_);
    guide_.assign(g, 0);
    std::size_t k = 0;
    for (std::size_t i = 0; i < g; ++i) {
      const std::uint64_t u = static_cast<std::uint64_t>(i) << shift_;  // smallest u of bucket i
      while (thr_[k] <= u) ++k;
      guide_[i] = static_cast<std::uint32_t>(k);
    }
  }

  double mean() const { return lambda_; }
  // The CDF thresholds below 2^32 as 32-bit numbers: a draw u gives k = #{j : thresholds[j] <= u}.
  std::vector<std::uint32_t> thresholds32() const {
    std::vector<std::uint32_t> t;
    for (const std::uint64_t x : thr_)
      if (x < (std::uint64_t(1) << 32)) t.push_back(static_cast<std::uint32_t>(x));
    return t;
  }
  // Raw pointers for hot loops (members read through a reference are reloaded after every store).
  struct View {
    const std::uint32_t* guide;
    const std::uint64_t* thr;
    int shift;
    std::uint32_t sample(std::uint32_t u) const {
      std::size_t k = guide[u >> shift];
      while (thr[k] <= u) ++k;
      return static_cast<std::uint32_t>(k);
    }
  };
  View view() const { return View{guide_.data(), thr_.data(), shift_}; }

  std::uint32_t sample(std::uint32_t u) const {
    std::size_t k = guide_[u >> shift_];
    while (thr_[k] <= u) ++k;
    return static_cast<std::uint32_t>(k);
  }
  std::uint32_t sample(Rng& rng) const { return sample(static_cast<std::uint32_t>(rng.next() >> 32)); }

 private:
  double lambda_ = 0.0;
  std::vector<std::uint64_t> thr_;
  std::vector<std::uint32_t> guide_;
  int shift_ = 32;
};

}  // namespace ahpsim
