#include "diversity.h"

#include <algorithm>
#include <limits>

namespace creatormesh::ranking {
namespace {

int bits(const GenreBits& g) {
  int n = 0;
  for (const uint64_t w : g) n += __builtin_popcountll(w);
  return n;
}

int shared(const GenreBits& a, const GenreBits& b) {
  int n = 0;
  for (size_t w = 0, end = std::min(a.size(), b.size()); w < end; ++w) n += __builtin_popcountll(a[w] & b[w]);
  return n;
}

std::vector<int> sizes_of(const std::vector<const GenreBits*>& genres, const std::vector<int>& creators) {
  std::vector<int> out(genres.size());
  for (size_t i = 0; i < genres.size(); ++i) out[i] = bits(*genres[i]) + (creators[i] >= 0 ? 1 : 0);
  return out;
}

}  // namespace

Mmr mmr(const std::vector<double>& relevance, const std::vector<const GenreBits*>& genres,
        const std::vector<int>& creators, int k, double strength) {
  const int n = static_cast<int>(relevance.size());
  k = std::max(0, std::min(k, n));
  const std::vector<int> sizes = sizes_of(genres, creators);
  std::vector<double> base(n), score(n);
  for (int i = 0; i < n; ++i) score[i] = base[i] = (1.0 - strength) * relevance[i];
  const double rescale = strength < 1.0 ? 1.0 / (1.0 - strength) : 1.0;
  std::vector<char> chosen(n, 0);
  Mmr out;
  for (int t = 0; t < k; ++t) {
    int best = -1;
    double top = -std::numeric_limits<double>::infinity();
    for (int i = 0; i < n; ++i) {  // the first index among equal scores
      if (!chosen[i] && (best < 0 || score[i] > top)) {
        best = i;
        top = score[i];
      }
    }
    out.picks.push_back(best);
    out.penalties.push_back((base[best] - top) * rescale);
    chosen[best] = 1;
    if (strength == 0.0) continue;
    for (int i = 0; i < n; ++i) {
      if (chosen[i]) continue;
      int inter = shared(*genres[i], *genres[best]);
      if (creators[best] >= 0 && creators[i] == creators[best]) ++inter;
      if (inter)  // no shared label: similarity 0, and score <= base already
        score[i] = std::min(score[i], base[i] - strength * (static_cast<double>(inter) / (sizes[i] + sizes[best] - inter)));
    }
  }
  return out;
}

double list_diversity(const std::vector<const GenreBits*>& genres, const std::vector<int>& creators) {
  const size_t n = genres.size();
  if (n < 2) return 0.0;
  const std::vector<int> sizes = sizes_of(genres, creators);
  double total = 0.0;
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = i + 1; j < n; ++j) {
      int inter = shared(*genres[i], *genres[j]);
      if (creators[i] >= 0 && creators[i] == creators[j]) ++inter;
      const int uni = sizes[i] + sizes[j] - inter;
      total += 1.0 - (uni > 0 ? static_cast<double>(inter) / uni : 0.0);
    }
  }
  return total / (static_cast<double>(n) * (n - 1) / 2);
}

double genre_coverage(const std::vector<const GenreBits*>& chosen, const std::vector<const GenreBits*>& candidates) {
  GenreBits pool, have;
  for (const auto* g : candidates) {
    if (g->size() > pool.size()) pool.resize(g->size(), 0);
    for (size_t w = 0; w < g->size(); ++w) pool[w] |= (*g)[w];
  }
  const int total = bits(pool);
  if (!total) return 1.0;
  have.assign(pool.size(), 0);
  for (const auto* g : chosen)
    for (size_t w = 0; w < g->size() && w < pool.size(); ++w) have[w] |= (*g)[w] & pool[w];
  return static_cast<double>(bits(have)) / total;
}

}  // namespace creatormesh::ranking
