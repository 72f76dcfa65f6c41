// A user's online features read from Redis exactly as creatormesh/ranking/features.py (FeatureStore) reads and
// interprets them: the same keys, the same read script (by its SHA1, loaded when Redis does not know it), the
// same history order, learned interests and interest list. Read-only: the Python service records interactions.
// (Named feature_store.h: a header called features.h would shadow glibc's <features.h>.)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "redis.h"

namespace creatormesh::ranking {

struct RecentInteraction {
  std::string item_id, type;
  double occurred_at = 0.0, watch_seconds = 0.0;
};

struct UserFeatures {
  std::string user_id;
  bool found = false;
  int64_t total_interactions = 0;
  std::vector<std::string> interests;   // declared first, then learned (top 20 by weight), each once
  std::vector<RecentInteraction> recent;  // newest first, at most history_length
  // Engaged item ids oldest first, each once at its latest interaction, skips left out (UserFeatures.history).
  std::vector<std::string> history() const;
};

class FeatureReader {
 public:
  // prefix: CREATORMESH_RANKING_REDIS_PREFIX; history_length: CREATORMESH_RANKING_HISTORY_LENGTH; the script reads
  // max(history_length, recent_window=20) entries, as FeatureStore does.
  FeatureReader(std::string prefix, int history_length, int recent_window = 20);
  UserFeatures read(Redis& redis, const std::string& user_id) const;
  // Several users in one round trip (a pipeline of script calls), in order.
  std::vector<UserFeatures> read_many(Redis& redis, const std::vector<std::string>& user_ids) const;

 private:
  std::string key(const std::string& user_id, const char* part) const;
  std::string prefix_;
  int history_length_, keep_;
};

}  // namespace creatormesh::ranking
