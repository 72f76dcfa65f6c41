// A small thread-safe least-recently-used cache (the ranker keeps SASRec states by recent history in one, as
// recommender.py's HIDDEN_CACHE_SIZE cache does: a feed is asked for again and again).
#pragma once

#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

namespace creatormesh::ranking {

template <typename Value>
class Lru {
 public:
  explicit Lru(size_t capacity) : capacity_(capacity) {}

  std::optional<Value> get(const std::string& key) {
    std::lock_guard guard(mutex_);
    const auto it = index_.find(key);
    if (it == index_.end()) return std::nullopt;
    order_.splice(order_.begin(), order_, it->second);
    return it->second->second;
  }

  void put(const std::string& key, Value value) {
    std::lock_guard guard(mutex_);
    if (const auto it = index_.find(key); it != index_.end()) {
      it->second->second = std::move(value);
      order_.splice(order_.begin(), order_, it->second);
      return;
    }
    order_.emplace_front(key, std::move(value));
    index_[key] = order_.begin();
    if (index_.size() > capacity_) {
      index_.erase(order_.back().first);
      order_.pop_back();
    }
  }

 private:
  size_t capacity_;
  std::mutex mutex_;
  std::list<std::pair<std::string, Value>> order_;
  std::unordered_map<std::string, typename std::list<std::pair<std::string, Value>>::iterator> index_;
};

}  // namespace creatormesh::ranking
