// The rankable items as creatormesh/ranking/catalog.py and columns.py hold them: each item in a slot (its row of
// model vectors; slots never move), label/genre/creator codes for interest matching and the MMR re-rank, and per
// label a quality-ordered list for cold start. Not thread-safe by itself: the ranker serialises the writer.
#pragma once

#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace creatormesh::ranking {

constexpr double NEUTRAL = 0.5;

struct Item {
  std::string id, creator_id;
  std::vector<std::string> genres, hashtags;
  std::vector<std::string> labels;  // genres and hashtags, sorted, each once (what interests match and a page lists)
  double quality = NEUTRAL;
  double published = std::nan("");  // epoch seconds; NaN = unknown
  bool blocked = false;             // brand safety: never shown

  static Item make(std::string id, std::vector<std::string> genres, std::vector<std::string> hashtags,
                   double quality, std::string creator_id = "", double published = std::nan(""), bool blocked = false);
  bool operator==(const Item& other) const;
};

using GenreBits = std::vector<uint64_t>;  // one bit per genre code

class Catalog {
 public:
  Catalog(int tower_dim, int sequence_dim) : tower_dim_(tower_dim), sequence_dim_(sequence_dim) {}

  // Add or replace an item with its model vectors; returns its slot.
  int upsert(std::shared_ptr<const Item> item, const float* tower, const float* sequence);

  size_t size() const { return items_.size(); }
  int slot(const std::string& id) const;  // -1 when unknown
  const std::shared_ptr<const Item>& item(int slot) const { return items_[slot]; }
  const float* tower(int slot) const { return tower_.data() + static_cast<size_t>(slot) * tower_dim_; }
  const float* sequence(int slot) const { return sequence_.data() + static_cast<size_t>(slot) * sequence_dim_; }
  const std::vector<int>& label_codes(int slot) const { return labels_[slot]; }
  const GenreBits& genre_bits(int slot) const { return genres_[slot]; }
  int creator(int slot) const { return creators_[slot]; }  // -1 = none
  int label_code(const std::string& label) const;          // -1 when no item has it

  // Catalog.best_for: up to n slots matching `interests` with quality >= min_quality, best first, taking turns
  // between interests; no known interest = the best items overall. Never a blocked or excluded slot.
  std::vector<int> best_for(const std::vector<std::string>& interests, int n, double min_quality,
                            const std::unordered_set<int>& exclude) const;

 private:
  using Ranked = std::set<std::pair<double, std::string>>;  // (-quality, id): best first, then by id
  int tower_dim_, sequence_dim_;
  std::unordered_map<std::string, int> slots_, label_codes_, genre_codes_, creator_codes_;
  std::vector<std::shared_ptr<const Item>> items_;
  std::vector<float> tower_, sequence_;
  std::vector<std::vector<int>> labels_;
  std::vector<GenreBits> genres_;
  std::vector<int> creators_;
  std::map<std::string, Ranked> by_label_;  // a label stays listed once seen (like the Python dict)
  Ranked all_;
};

}  // namespace creatormesh::ranking
