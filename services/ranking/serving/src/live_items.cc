#include "live_items.h"

#include <chrono>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>
#include <unordered_set>

namespace creatormesh::ranking {
namespace {

using nlohmann::json;

std::string base64_decode(const std::string& in) {
  std::string out;
  uint32_t bits = 0;
  int count = 0, chars = 0;
  for (const char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (c >= '0' && c <= '9') v = c - '0' + 52;
    else if (c == '+') v = 62;
    else if (c == '/') v = 63;
    else if (c == '=') break;
    else if (c == '\n' || c == '\r' || c == ' ') continue;
    else throw std::runtime_error("vector: invalid base64");
    bits = (bits << 6) | static_cast<uint32_t>(v);
    count += 6;
    ++chars;
    if (count >= 8) {
      count -= 8;
      out += static_cast<char>((bits >> count) & 0xff);
    }
  }
  if (chars % 4 == 1) throw std::runtime_error("vector: invalid base64 length");
  return out;
}

std::vector<float> decode_vector(const std::string& b64) {
  const std::string bytes = base64_decode(b64);
  if (bytes.size() % 4) throw std::runtime_error("vector: not a whole number of float32 values");
  std::vector<float> out(bytes.size() / 4);
  for (size_t i = 0; i < out.size(); ++i) {
    uint32_t u = 0;
    for (int b = 3; b >= 0; --b) u = (u << 8) | static_cast<unsigned char>(bytes[4 * i + b]);  // little-endian
    std::memcpy(&out[i], &u, sizeof u);
  }
  return out;
}

std::optional<double> optional_number(const json& v) {
  if (v.is_null()) return std::nullopt;
  return v.get<double>();
}

// Python's bool(value)
bool truthy(const json& v) {
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_number()) return v.get<double>() != 0;
  if (v.is_string()) return !v.get_ref<const std::string&>().empty();
  return !v.is_null() && !v.empty();
}

std::string text(const redisReply* r) {
  if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) return std::string(r->str, r->len);
  throw RedisError("unexpected reply from Redis");
}

const redisReply* element(const redisReply* r, size_t i) {
  if (r->type != REDIS_REPLY_ARRAY || i >= r->elements) throw RedisError("unexpected reply from Redis");
  return r->element[i];
}

}  // namespace

StoredItem decode_item(const std::string& raw) {
  StoredItem item;
  try {
    const auto d = json::parse(raw);
    item.id = d.at("id").get<std::string>();
    item.genres = d.at("genres").get<std::vector<std::string>>();
    item.hashtags = d.at("hashtags").get<std::vector<std::string>>();
    item.text = d.at("text").get<std::string>();
    item.engagement_rate = optional_number(d.at("engagement_rate"));
    item.quality = optional_number(d.at("quality"));
    item.title = d.value("title", std::string());
    item.vector = decode_vector(d.at("vector").get<std::string>());
    item.creator_id = d.at("creator_id").get<std::string>();
    item.published_at = optional_number(d.at("published_at"));
    item.blocked = d.contains("blocked") && truthy(d.at("blocked"));
    item.model_version = d.value("model_version", std::string());
  } catch (const std::exception& e) {
    throw std::runtime_error("stored item " + (item.id.empty() ? std::string("?") : item.id) + ": " + e.what());
  }
  return item;
}

LiveItemReader::LiveItemReader(const std::string& prefix)
    : hash_key_(prefix + ":items"), log_key_(prefix + ":items:log") {}

std::pair<std::vector<StoredItem>, std::string> LiveItemReader::load_all(Redis& redis) const {
  const auto last = redis.command({"XREVRANGE", log_key_, "+", "-", "COUNT", "1"});
  const std::string position = last->elements ? text(element(element(last.get(), 0), 0)) : "0-0";
  std::vector<StoredItem> items;
  std::string cursor = "0";
  do {
    const auto page = redis.command({"HSCAN", hash_key_, cursor, "COUNT", "1000"});
    cursor = text(element(page.get(), 0));
    const redisReply* fields = element(page.get(), 1);
    for (size_t i = 1; i < fields->elements; i += 2) items.push_back(decode_item(text(fields->element[i])));
  } while (cursor != "0");
  return {std::move(items), position};
}

void LiveItemReader::follow(Redis& redis, std::string position,
                            const std::function<void(std::vector<StoredItem>)>& apply,
                            const std::atomic<bool>& stop) const {
  while (!stop) {
    try {
      const auto batches = redis.command({"XREAD", "COUNT", "500", "BLOCK", "1000", "STREAMS", log_key_, position});
      if (batches->type == REDIS_REPLY_NIL) continue;
      for (size_t s = 0; s < batches->elements; ++s) {
        const redisReply* entries = element(element(batches.get(), s), 1);
        if (!entries->elements) continue;
        std::vector<std::string> hmget = {"HMGET", hash_key_};
        std::unordered_set<std::string> seen;
        for (size_t e = 0; e < entries->elements; ++e) {
          const redisReply* fields = element(entries->element[e], 1);
          bool found = false;
          for (size_t f = 0; f + 1 < fields->elements && !found; f += 2) {
            if (text(fields->element[f]) != "id") continue;
            found = true;
            if (auto id = text(fields->element[f + 1]); seen.insert(id).second) hmget.push_back(std::move(id));
          }
          if (!found) std::cerr << "live item stream: an entry without an id; skipped" << std::endl;
        }
        std::vector<StoredItem> items;
        if (hmget.size() > 2) {
          const auto raws = redis.command(hmget);
          for (size_t i = 0; i < raws->elements; ++i) {
            if (raws->element[i]->type == REDIS_REPLY_NIL) continue;  // deleted since
            try {
              items.push_back(decode_item(text(raws->element[i])));
            } catch (const std::runtime_error& e) {
              std::cerr << "live item stream: skipped " << hmget[i + 2] << ": " << e.what() << std::endl;
            }
          }
        }
        apply(std::move(items));
        position = text(element(element(entries, entries->elements - 1), 0));
      }
    } catch (const std::exception& e) {
      std::cerr << "live item stream: " << e.what() << "; retrying" << std::endl;
      for (int i = 0; i < 10 && !stop; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
}

}  // namespace creatormesh::ranking
