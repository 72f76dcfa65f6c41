// The feed ranker, as creatormesh/ranking/ranker.py (Ranker.rank_many for index retrieval) computes it:
// candidates from the item index, the sequence model and cold start; scores blended between interests and the
// learned models, quality and freshness; the MMR re-rank over genre and creator. Many concurrent readers, one
// writer (add_items) at a time.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <unordered_set>
#include <shared_mutex>
#include <string>
#include <vector>

#include "catalog.h"
#include "checkpoint.h"
#include "feature_store.h"
#include "index.h"
#include "live_items.h"
#include "lru.h"
#include "models.h"

namespace creatormesh::ranking {

// RankingSettings (CREATORMESH_RANKING_*): the fields the ranker uses, with the Python defaults.
struct RankerSettings {
  int warm_after_interactions = 20;
  int retrieval_candidates = 300;
  double cold_min_quality = 0.3;
  double quality_weight = 0.15;
  double freshness_weight = 0.05;
  double freshness_half_life_hours = 48.0;
  IndexSettings index;
};

struct RankRequest {
  std::string user_id;
  int limit = 20;
  double diversity = 0.3;
  std::vector<std::string> exclude;
  bool control = false;  // the A/B control arm: no learned models (w = 0)
  double now = 0.0;      // epoch seconds
};

struct ScoredItem {
  std::shared_ptr<const Item> item;
  double score, two_tower, sequence, quality, freshness, interest_match, diversity_penalty;
};

struct Page {
  std::vector<ScoredItem> items;
  bool warm = false;
  double blend_weight = 0.0;
  double intra_list_diversity = 0.0, coverage = 0.0;
  int considered = 0;
};

class Ranker {
 public:
  Ranker(const Checkpoint& checkpoint, RankerSettings settings);

  // The writer: the trained catalogue, then live items (those of another model version are skipped and counted:
  // their vectors need the text embedder, which only the Python service runs). Returns the items added.
  size_t add_trained();
  size_t add_items(const std::vector<StoredItem>& stored);
  size_t skipped() const { return skipped_.load(); }

  Page rank(const RankRequest& request, const UserFeatures& features) const;
  size_t size() const;
  std::string index_kind() const;
  const std::string& version() const { return checkpoint_.version; }

 private:
  void write(const std::vector<std::shared_ptr<const Item>>& items, const std::vector<float>& tower,
             const std::vector<float>& sequence);
  std::vector<int> retrieve(const UserFeatures& features, const Vector& user, const Vector& state, bool has_history,
                            double w, const std::unordered_set<int>& seen_slots,
                            const std::vector<int>& seen_trained) const;

  const Checkpoint& checkpoint_;
  RankerSettings settings_;
  UserTower users_;
  SequenceModel sequence_;
  MatrixMap trained_sequence_;  // (trained items, d) SASRec item embeddings
  Catalog catalog_;
  ItemIndex index_;
  std::pair<Vector, bool> state(const std::vector<std::string>& history) const;

  mutable Lru<std::pair<Vector, bool>> states_{4096};  // SASRec states by the last max_len trained history items
  std::vector<int> trained_slots_;  // trained position -> catalogue slot (-1 = not in the catalogue)
  mutable std::shared_mutex lock_;
  std::atomic<size_t> skipped_{0};
};

double blend_weight(int64_t interactions, int warm_after);

}  // namespace creatormesh::ranking
