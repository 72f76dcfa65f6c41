#include "catalog.h"

#include <algorithm>
#include <cstring>

namespace creatormesh::ranking {

Item Item::make(std::string id, std::vector<std::string> genres, std::vector<std::string> hashtags, double quality,
                std::string creator_id, double published, bool blocked) {
  Item out;
  out.id = std::move(id);
  out.creator_id = std::move(creator_id);
  std::set<std::string> labels(genres.begin(), genres.end());
  labels.insert(hashtags.begin(), hashtags.end());
  out.labels.assign(labels.begin(), labels.end());
  out.genres = std::move(genres);
  out.hashtags = std::move(hashtags);
  out.quality = quality;
  out.published = published;
  out.blocked = blocked;
  return out;
}

bool Item::operator==(const Item& o) const {
  const bool same_time = (std::isnan(published) && std::isnan(o.published)) || published == o.published;
  return id == o.id && creator_id == o.creator_id && genres == o.genres && hashtags == o.hashtags &&
         quality == o.quality && same_time && blocked == o.blocked;
}

int Catalog::slot(const std::string& id) const {
  const auto it = slots_.find(id);
  return it == slots_.end() ? -1 : it->second;
}

int Catalog::label_code(const std::string& label) const {
  const auto it = label_codes_.find(label);
  return it == label_codes_.end() ? -1 : it->second;
}

int Catalog::upsert(std::shared_ptr<const Item> item, const float* tower, const float* sequence) {
  auto [at, added] = slots_.emplace(item->id, static_cast<int>(items_.size()));
  const int slot = at->second;
  if (added) {
    items_.push_back(nullptr);
    tower_.resize(items_.size() * tower_dim_);
    sequence_.resize(items_.size() * sequence_dim_);
    labels_.emplace_back();
    genres_.emplace_back();
    creators_.push_back(-1);
  } else if (const auto& old = items_[slot]; !old->blocked) {
    const std::pair<double, std::string> entry{-old->quality, old->id};
    for (const auto& label : old->labels) by_label_[label].erase(entry);
    all_.erase(entry);
  }
  std::memcpy(tower_.data() + static_cast<size_t>(slot) * tower_dim_, tower, sizeof(float) * tower_dim_);
  std::memcpy(sequence_.data() + static_cast<size_t>(slot) * sequence_dim_, sequence, sizeof(float) * sequence_dim_);
  GenreBits bits;
  for (const auto& genre : item->genres) {
    const int code = genre_codes_.emplace(genre, static_cast<int>(genre_codes_.size())).first->second;
    if (bits.size() <= static_cast<size_t>(code / 64)) bits.resize(code / 64 + 1, 0);
    bits[code / 64] |= uint64_t{1} << (code % 64);
  }
  genres_[slot] = std::move(bits);
  labels_[slot].clear();
  for (const auto& label : item->labels)
    labels_[slot].push_back(label_codes_.emplace(label, static_cast<int>(label_codes_.size())).first->second);
  creators_[slot] = item->creator_id.empty()
                        ? -1
                        : creator_codes_.emplace(item->creator_id, static_cast<int>(creator_codes_.size())).first->second;
  if (!item->blocked) {
    const std::pair<double, std::string> entry{-item->quality, item->id};
    for (const auto& label : item->labels) by_label_[label].insert(entry);
    all_.insert(entry);
  }
  items_[slot] = std::move(item);
  return slot;
}

std::vector<int> Catalog::best_for(const std::vector<std::string>& interests, int n, double min_quality,
                                   const std::unordered_set<int>& exclude) const {
  std::vector<const Ranked*> lists;
  std::unordered_set<std::string> named;
  for (const auto& interest : interests) {
    if (!named.insert(interest).second) continue;
    if (const auto it = by_label_.find(interest); it != by_label_.end()) lists.push_back(&it->second);
  }
  if (lists.empty()) lists.push_back(&all_);
  std::vector<Ranked::const_iterator> next;
  for (const Ranked* list : lists) next.push_back(list->begin());
  std::vector<int> out;
  std::unordered_set<int> chosen;
  std::vector<size_t> alive(lists.size());
  for (size_t i = 0; i < lists.size(); ++i) alive[i] = i;
  while (!alive.empty() && static_cast<int>(out.size()) < n) {
    std::vector<size_t> still;
    for (const size_t s : alive) {
      auto& it = next[s];
      for (; it != lists[s]->end(); ++it) {
        if (-it->first < min_quality) {
          it = lists[s]->end();  // quality-ordered: nothing better follows
          break;
        }
        const int slot = slots_.at(it->second);
        if (chosen.count(slot) || exclude.count(slot)) continue;
        chosen.insert(slot);
        out.push_back(slot);
        still.push_back(s);
        ++it;
        break;
      }
      if (static_cast<int>(out.size()) >= n) break;
    }
    alive = std::move(still);
  }
  return out;
}

}  // namespace creatormesh::ranking
