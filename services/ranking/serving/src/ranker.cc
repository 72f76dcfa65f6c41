#include "ranker.h"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <numeric>
#include <unordered_map>

#include "diversity.h"

namespace creatormesh::ranking {
namespace {

constexpr int kSequenceCandidates = 50;  // ranker.SEQUENCE_CANDIDATES
constexpr int kPoolFactor = 4, kPoolMin = 100;  // the MMR pool: the best max(4 x limit, 100) candidates
constexpr double kLogitClip = 1e-12;

double sigmoid(double x) { return 0.5 * (1.0 + std::tanh(0.5 * x)); }

double logit(double p) {
  const double q = std::clamp(p, kLogitClip, 1.0 - kLogitClip);
  return std::log(q) - std::log1p(-q);
}

double freshness(double published, double now, double half_life_hours) {
  if (std::isnan(published)) return NEUTRAL;
  return std::pow(0.5, std::max(0.0, now - published) / 3600.0 / half_life_hours);
}

}  // namespace

double blend_weight(int64_t interactions, int warm_after) {
  return std::min(1.0, static_cast<double>(std::max<int64_t>(0, interactions)) / warm_after);
}

Ranker::Ranker(const Checkpoint& checkpoint, RankerSettings settings)
    : checkpoint_(checkpoint),
      settings_(settings),
      users_(checkpoint),
      sequence_(checkpoint),
      trained_sequence_(nullptr, 0, 0),
      catalog_(checkpoint.dim, checkpoint.sequence_dim),
      index_(checkpoint.dim, settings.index) {
  const Tensor& table = tensor(checkpoint.items, "sequence_embeddings", 2);
  new (&trained_sequence_) MatrixMap(table.values.data(), table.rows(), table.cols());
  trained_slots_.assign(checkpoint.item_ids.size(), -1);
}

size_t Ranker::size() const {
  std::shared_lock guard(lock_);
  return catalog_.size();
}

std::string Ranker::index_kind() const {
  std::shared_lock guard(lock_);
  return index_.kind();
}

size_t Ranker::add_trained() {
  const auto& c = checkpoint_;
  const Tensor& vectors = tensor(c.items, "item_vectors", 2);
  std::vector<std::shared_ptr<const Item>> items;
  std::vector<float> sequence;
  for (size_t i = 0; i < c.item_ids.size(); ++i) {
    const auto& t = c.trained[i];
    items.push_back(std::make_shared<const Item>(Item::make(c.item_ids[i], t.genres, t.tags, t.quality)));
    const float* row = trained_sequence_.row(static_cast<Eigen::Index>(i)).data();
    sequence.insert(sequence.end(), row, row + c.sequence_dim);
  }
  write(items, vectors.values, sequence);
  return items.size();
}

size_t Ranker::add_items(const std::vector<StoredItem>& stored) {
  std::unordered_map<std::string, size_t> last;  // an id twice in one batch: the last one wins
  for (size_t i = 0; i < stored.size(); ++i) last[stored[i].id] = i;
  std::vector<std::shared_ptr<const Item>> items;
  std::vector<float> tower, sequence;
  for (size_t i = 0; i < stored.size(); ++i) {
    const StoredItem& s = stored[i];
    if (last[s.id] != i) continue;
    if (s.model_version != checkpoint_.version || s.vector.size() != static_cast<size_t>(checkpoint_.dim)) {
      ++skipped_;
      continue;
    }
    auto item = std::make_shared<const Item>(Item::make(s.id, s.genres, s.hashtags, s.quality.value_or(NEUTRAL),
                                                        s.creator_id, s.published_at.value_or(std::nan("")),
                                                        s.blocked));
    if (const int slot = catalog_.slot(s.id);  // the writer is the only one changing the catalogue
        slot >= 0 && *catalog_.item(slot) == *item &&
        std::equal(s.vector.begin(), s.vector.end(), catalog_.tower(slot))) {
      continue;  // stored again as it is
    }
    const Vector seq = sequence_.item(s.id, s.genres);
    items.push_back(std::move(item));
    tower.insert(tower.end(), s.vector.begin(), s.vector.end());
    sequence.insert(sequence.end(), seq.data(), seq.data() + seq.size());
  }
  if (!items.empty()) write(items, tower, sequence);
  return items.size();
}

void Ranker::write(const std::vector<std::shared_ptr<const Item>>& items, const std::vector<float>& tower,
                   const std::vector<float>& sequence) {
  // slots as upsert will give them (this is the only writer), so a rebuilt index can be made before the lock
  std::vector<int> slots;
  std::unordered_map<std::string, int> fresh;
  for (const auto& item : items) {
    int slot = catalog_.slot(item->id);
    if (slot < 0) slot = fresh.emplace(item->id, static_cast<int>(catalog_.size() + fresh.size())).first->second;
    slots.push_back(slot);
  }
  std::optional<IndexRows> rebuilt;
  if (index_.needs_rebuild(slots)) rebuilt = index_.rebuilt(slots, tower);
  std::unique_lock guard(lock_);
  for (size_t i = 0; i < items.size(); ++i) {
    catalog_.upsert(items[i], tower.data() + i * checkpoint_.dim, sequence.data() + i * checkpoint_.sequence_dim);
    if (const auto at = checkpoint_.item_position.find(items[i]->id); at != checkpoint_.item_position.end())
      trained_slots_[at->second] = slots[i];
  }
  if (rebuilt) {
    index_.install(std::move(*rebuilt));
  } else {
    index_.append(slots, tower);
  }
}

std::vector<int> Ranker::retrieve(const UserFeatures& features, const Vector& user,
                                  const Vector& state, bool has_history, double w,
                                  const std::unordered_set<int>& seen_slots,
                                  const std::vector<int>& seen_trained) const {
  std::vector<int> slots;
  const auto& s = settings_;
  if (w > 0) {
    slots = index_.search(user.data(), s.retrieval_candidates, seen_slots);
    if (has_history) {
      Eigen::VectorXd logits = (trained_sequence_ * state).cast<double>();
      for (const int p : seen_trained) logits[p] = -std::numeric_limits<double>::infinity();
      std::vector<int> order;
      for (Eigen::Index p = 0; p < logits.size(); ++p)
        if (std::isfinite(logits[p])) order.push_back(static_cast<int>(p));
      const size_t k = std::min<size_t>(kSequenceCandidates, order.size());
      std::partial_sort(order.begin(), order.begin() + k, order.end(),
                        [&](int a, int b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
      for (size_t i = 0; i < k; ++i)
        if (trained_slots_[order[i]] >= 0) slots.push_back(trained_slots_[order[i]]);
    }
  }
  if (w < 1) {
    const auto cold = catalog_.best_for(features.interests, s.retrieval_candidates, s.cold_min_quality, seen_slots);
    slots.insert(slots.end(), cold.begin(), cold.end());
  }
  std::vector<int> out;  // each item once, where it first came; never a blocked one
  std::unordered_set<int> have;
  for (const int slot : slots)
    if (have.insert(slot).second && !catalog_.item(slot)->blocked) out.push_back(slot);
  return out;
}

std::pair<Vector, bool> Ranker::state(const std::vector<std::string>& history) const {
  std::vector<const std::string*> known;
  for (const auto& id : history)
    if (checkpoint_.item_position.count(id)) known.push_back(&id);
  std::string key;
  for (size_t i = known.size() > static_cast<size_t>(checkpoint_.max_len) ? known.size() - checkpoint_.max_len : 0;
       i < known.size(); ++i) {
    key += std::to_string(known[i]->size());  // length-prefixed: no two histories share a key
    key.push_back(':');
    key += *known[i];
  }
  if (auto hit = states_.get(key)) return std::move(*hit);
  auto computed = sequence_.state(history);
  states_.put(key, computed);
  return computed;
}

Page Ranker::rank(const RankRequest& request, const UserFeatures& features) const {
  const auto& s = settings_;
  const auto& cal_tt = checkpoint_.two_tower_calibration;
  const auto& cal_seq = checkpoint_.sequence_calibration;
  const double share = blend_weight(features.total_interactions, s.warm_after_interactions);
  const double w = request.control ? 0.0 : share;
  const std::vector<std::string> history = features.history();
  const Vector user = users_.vector(request.user_id, features.interests, history);
  const auto [state, known] = this->state(history);
  const bool has_history = !history.empty() && known;

  std::shared_lock guard(lock_);
  std::unordered_set<int> seen_slots;
  std::vector<int> seen_trained;
  for (const auto* ids : {&request.exclude, &history}) {
    for (const auto& id : *ids) {
      if (const int slot = catalog_.slot(id); slot >= 0) seen_slots.insert(slot);
      if (const auto at = checkpoint_.item_position.find(id); at != checkpoint_.item_position.end())
        seen_trained.push_back(at->second);
    }
  }
  const std::vector<int> rows = retrieve(features, user, state, has_history, w, seen_slots, seen_trained);
  Page page;
  page.warm = share >= 1.0;
  page.blend_weight = w;
  page.considered = static_cast<int>(rows.size());
  if (rows.empty()) return page;

  std::unordered_set<int> interests;
  for (const auto& interest : features.interests) interests.insert(catalog_.label_code(interest));
  interests.erase(-1);  // a label no item has matches nothing
  const bool any_interest = !features.interests.empty();
  const Eigen::VectorXd user64 = user.cast<double>(), state64 = state.cast<double>();
  const size_t n = rows.size();
  std::vector<double> score(n), two_tower(n), seq(n), match(n), fresh(n);
  for (size_t i = 0; i < n; ++i) {
    const int slot = rows[i];
    const Eigen::Map<const Eigen::VectorXf> tower(catalog_.tower(slot), checkpoint_.dim);
    two_tower[i] = sigmoid((tower.cast<double>().dot(user64) - cal_tt.mean) / cal_tt.std);
    if (has_history) {
      const Eigen::Map<const Eigen::VectorXf> item(catalog_.sequence(slot), checkpoint_.sequence_dim);
      seq[i] = sigmoid((item.cast<double>().dot(state64) - cal_seq.mean) / cal_seq.std);
    } else {
      seq[i] = NEUTRAL;
    }
    const double learned =
        sigmoid(checkpoint_.blend_two_tower * logit(two_tower[i]) + checkpoint_.blend_sequence * logit(seq[i]));
    const auto& labels = catalog_.label_codes(slot);
    if (any_interest && !labels.empty()) {
      int hits = 0;
      for (const int code : labels) hits += static_cast<int>(interests.count(code));
      const int size = static_cast<int>(labels.size());
      match[i] = std::min(1.0, static_cast<double>(hits) / std::max(std::min(size, 2), 1));
    } else {
      match[i] = 0.0;
    }
    fresh[i] = freshness(catalog_.item(slot)->published, request.now, s.freshness_half_life_hours);
    const double relevance = w * learned + (1.0 - w) * match[i];
    score[i] = (1.0 - s.quality_weight - s.freshness_weight) * relevance + s.quality_weight * catalog_.item(slot)->quality;
    score[i] = score[i] + s.freshness_weight * fresh[i];
  }
  std::vector<int> pool(n);
  std::iota(pool.begin(), pool.end(), 0);
  std::stable_sort(pool.begin(), pool.end(), [&](int a, int b) { return score[a] > score[b]; });
  pool.resize(std::min<size_t>(n, std::max(kPoolFactor * request.limit, kPoolMin)));

  std::vector<const GenreBits*> genres;
  std::vector<int> creators;
  std::vector<double> relevance;
  for (const int i : pool) {
    genres.push_back(&catalog_.genre_bits(rows[i]));
    creators.push_back(catalog_.creator(rows[i]));
    relevance.push_back(score[i]);
  }
  const Mmr picked = mmr(relevance, genres, creators, request.limit, request.diversity);
  std::vector<const GenreBits*> chosen_genres, all_genres;
  std::vector<int> chosen_creators;
  for (size_t t = 0; t < picked.picks.size(); ++t) {
    const int p = picked.picks[t], i = pool[p], slot = rows[i];
    const auto& item = catalog_.item(slot);
    page.items.push_back({item, score[i] - picked.penalties[t], two_tower[i], seq[i], item->quality, fresh[i],
                          match[i], picked.penalties[t]});
    chosen_genres.push_back(genres[p]);
    chosen_creators.push_back(creators[p]);
  }
  for (const int slot : rows) all_genres.push_back(&catalog_.genre_bits(slot));
  page.intra_list_diversity = list_diversity(chosen_genres, chosen_creators);
  page.coverage = genre_coverage(chosen_genres, all_genres);
  return page;
}

}  // namespace creatormesh::ranking
