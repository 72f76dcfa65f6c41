#include "feature_store.h"

#include <openssl/sha.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <unordered_set>
#include <utility>

namespace creatormesh::ranking {
namespace {

using nlohmann::json;

// features.py's _READ, byte for byte: Redis knows it by its SHA1. KEYS: meta, history, genres; ARGV: entries to read.
constexpr char kReadScript[] = R"lua(
return {redis.call('HGETALL', KEYS[1]), redis.call('LRANGE', KEYS[2], 0, tonumber(ARGV[1]) - 1),
        redis.call('HGETALL', KEYS[3]), redis.call('PTTL', KEYS[1])}
)lua";
constexpr size_t kLearnedLimit = 20;  // LEARNED_LIMIT
const char* const kNotEngaged = "skip";  // NOT_ENGAGED

std::string sha1_hex(const std::string& text) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (const unsigned char b : digest) {
    out += hex[b >> 4];
    out += hex[b & 15];
  }
  return out;
}

const std::string& read_sha() {
  static const std::string sha = sha1_hex(kReadScript);
  return sha;
}

std::string text(const redisReply* r) {
  if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) return std::string(r->str, r->len);
  if (r->type == REDIS_REPLY_INTEGER) return std::to_string(r->integer);
  throw RedisError("unexpected reply to the feature read script");
}

// float(s) / int(s) as Python parses a Redis field
double to_double(const std::string& s) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end) throw std::runtime_error("not a number: '" + s + "'");
  return v;
}

int64_t to_int(const std::string& s) {
  char* end = nullptr;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end) throw std::runtime_error("not an integer: '" + s + "'");
  return v;
}

double to_double(const json& v) { return v.is_string() ? to_double(v.get<std::string>()) : v.get<double>(); }

// _pairs: field, value, field, value, ... as a map
std::map<std::string, std::string> pairs(const redisReply* r) {
  std::map<std::string, std::string> out;
  for (size_t i = 0; i + 1 < r->elements; i += 2) out[text(r->element[i])] = text(r->element[i + 1]);
  return out;
}

std::string get(const std::map<std::string, std::string>& m, const std::string& key, const std::string& fallback) {
  const auto it = m.find(key);
  return it == m.end() ? fallback : it->second;
}

// FeatureStore._learned: genres with a positive weight, by (-weight, -interactions, interest)
std::vector<std::string> learned(const std::map<std::string, std::string>& genres) {
  struct Weight {
    std::string interest;
    double weight;
    int64_t interactions;
  };
  std::vector<Weight> out;
  for (const auto& [field, value] : genres) {
    if (field.compare(0, 2, "w:") != 0) continue;
    const std::string interest = field.substr(2);
    const double weight = to_double(value);
    if (weight > 0) out.push_back({interest, weight, to_int(get(genres, "n:" + interest, "0"))});
  }
  std::sort(out.begin(), out.end(), [](const Weight& a, const Weight& b) {
    if (a.weight != b.weight) return a.weight > b.weight;
    if (a.interactions != b.interactions) return a.interactions > b.interactions;
    return a.interest < b.interest;
  });
  std::vector<std::string> names;
  for (size_t i = 0; i < out.size() && i < kLearnedLimit; ++i) names.push_back(out[i].interest);
  return names;
}

}  // namespace

std::vector<std::string> UserFeatures::history() const {
  std::unordered_set<std::string> seen;
  std::vector<std::string> out;
  for (const auto& r : recent)
    if (r.type != kNotEngaged && seen.insert(r.item_id).second) out.push_back(r.item_id);
  std::reverse(out.begin(), out.end());
  return out;
}

FeatureReader::FeatureReader(std::string prefix, int history_length, int recent_window)
    : prefix_(std::move(prefix)), history_length_(history_length), keep_(std::max(history_length, recent_window)) {
  if (history_length < 1 || recent_window < 1)
    throw std::invalid_argument("history_length and recent_window must be positive");
}

std::string FeatureReader::key(const std::string& user_id, const char* part) const {
  return prefix_ + ":user:{" + user_id + "}:" + part;
}

UserFeatures FeatureReader::read(Redis& redis, const std::string& user_id) const {
  return read_many(redis, {user_id}).front();
}

std::vector<UserFeatures> FeatureReader::read_many(Redis& redis, const std::vector<std::string>& user_ids) const {
  std::vector<std::vector<std::string>> calls;
  for (const auto& user_id : user_ids)
    calls.push_back({"EVALSHA", read_sha(), "3", key(user_id, "meta"), key(user_id, "history"),
                     key(user_id, "genres"), std::to_string(keep_)});
  // Called by its hash; only when Redis does not know the script (a restart) is it loaded and the read repeated.
  // As a redis-py pipeline does, the first error reply is the one raised.
  auto first_error = [](const std::vector<Reply>& replies) -> const redisReply* {
    for (const auto& r : replies)
      if (r->type == REDIS_REPLY_ERROR) return r.get();
    return nullptr;
  };
  auto replies = redis.pipeline(calls);
  if (const auto* e = first_error(replies); e && std::string(e->str, e->len).rfind("NOSCRIPT", 0) == 0) {
    redis.command({"SCRIPT", "LOAD", kReadScript});
    replies = redis.pipeline(calls);
  }
  if (const auto* e = first_error(replies)) throw RedisError(std::string(e->str, e->len));

  std::vector<UserFeatures> out;
  for (size_t u = 0; u < user_ids.size(); ++u) {
    const redisReply* r = replies[u].get();
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 4 || r->element[0]->type != REDIS_REPLY_ARRAY ||
        r->element[1]->type != REDIS_REPLY_ARRAY || r->element[2]->type != REDIS_REPLY_ARRAY)
      throw RedisError("unexpected reply to the feature read script");
    const auto meta = pairs(r->element[0]);
    const auto genres = pairs(r->element[2]);
    // history entries, sorted newest first; stable: arrival order among equal times
    std::vector<std::pair<double, json>> entries;
    const redisReply* history = r->element[1];
    for (size_t i = 0; i < history->elements; ++i) {
      auto entry = json::parse(text(history->element[i]));
      const double at = to_double(entry.at("occurred_at"));
      entries.emplace_back(at, std::move(entry));
    }
    std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.first > b.first; });

    UserFeatures f;
    f.user_id = user_ids[u];
    if (!meta.empty()) {
      f.found = true;
      f.total_interactions = to_int(get(meta, "total", "0"));
      std::unordered_set<std::string> seen;
      for (const auto& interest : json::parse(get(meta, "declared", "[]")).get<std::vector<std::string>>())
        if (seen.insert(interest).second) f.interests.push_back(interest);
      for (const auto& interest : learned(genres))
        if (seen.insert(interest).second) f.interests.push_back(interest);
      for (size_t i = 0; i < entries.size() && i < static_cast<size_t>(history_length_); ++i) {
        const auto& e = entries[i].second;
        f.recent.push_back({e.at("item_id").get<std::string>(), e.at("type").get<std::string>(), entries[i].first,
                            to_double(e.at("watch_seconds"))});
      }
    }
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace creatormesh::ranking
