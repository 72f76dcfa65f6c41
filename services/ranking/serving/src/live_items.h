// Live items (from `content.scored`) as creatormesh/ranking/live_items.py stores them in Redis: the hash
// `{prefix}:items` (item id -> JSON with the item-tower vector as base64 little-endian float32) and the change
// stream `{prefix}:items:log`. Read-only: the Python service's consumer embeds and stores items.
#pragma once

#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "redis.h"

namespace creatormesh::ranking {

struct StoredItem {
  std::string id;
  std::vector<std::string> genres, hashtags;
  std::string text, title, creator_id, model_version;
  std::optional<double> engagement_rate, quality, published_at;  // JSON null = unset
  bool blocked = false;
  std::vector<float> vector;  // the item-tower vector (empty when the JSON has none)
};

// Parses one stored JSON value (live_items.decode); throws std::runtime_error naming what is wrong.
StoredItem decode_item(const std::string& raw);

class LiveItemReader {
 public:
  explicit LiveItemReader(const std::string& prefix);
  // Every stored item and the stream position to follow from (the last entry's id, "0-0" when none),
  // read as load_all does (position first, then HSCAN count 1000).
  std::pair<std::vector<StoredItem>, std::string> load_all(Redis& redis) const;
  // Applies every change after `position` until `stop` is set: XREAD BLOCK 1000 COUNT 500, ids deduplicated
  // (first occurrence order), HMGET their values, apply() those still stored. Redis errors are logged to stderr
  // and retried after 1 s (reconnecting); a value that cannot be decoded is logged and skipped.
  void follow(Redis& redis, std::string position, const std::function<void(std::vector<StoredItem>)>& apply,
              const std::atomic<bool>& stop) const;

 private:
  std::string hash_key_, log_key_;
};

}  // namespace creatormesh::ranking
