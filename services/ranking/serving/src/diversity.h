// Diversity as creatormesh/ranking/diversity.py computes it over genre bits and creator codes: the greedy MMR
// re-rank (with each pick's diversity penalty), intra-list diversity and genre coverage. An item's feature set
// is its genres plus its creator; similarity is their Jaccard index.
#pragma once

#include <vector>

#include "catalog.h"

namespace creatormesh::ranking {

struct Mmr {
  std::vector<int> picks;         // positions in the input, in page order
  std::vector<double> penalties;  // rel - MMR value at selection, rescaled by 1 / (1 - strength)
};

Mmr mmr(const std::vector<double>& relevance, const std::vector<const GenreBits*>& genres,
        const std::vector<int>& creators, int k, double strength);
double list_diversity(const std::vector<const GenreBits*>& genres, const std::vector<int>& creators);
double genre_coverage(const std::vector<const GenreBits*>& chosen, const std::vector<const GenreBits*>& candidates);

}  // namespace creatormesh::ranking
