#include "index.h"

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>

#include <algorithm>
#include <cmath>
#include <numeric>

namespace creatormesh::ranking {
namespace {

constexpr double kDeadShare = 0.2;    // rebuild when more than this share of rows is dead
constexpr size_t kMinRebuildRows = 64;  // below this many rows dead rows are cheap

}  // namespace

ItemIndex::ItemIndex(int dim, IndexSettings settings) : dim_(dim), settings_(settings) {
  rows_ = make(kind_for(0), {}, {});
}

std::string ItemIndex::kind_for(size_t live) const {
  return live <= static_cast<size_t>(settings_.exact_max_items) ? "flat" : "hnsw";
}

IndexRows ItemIndex::make(const std::string& kind, std::vector<int> slots, std::vector<float> vectors) const {
  IndexRows out;
  out.kind = kind;
  if (kind == "hnsw") {
    auto hnsw = std::make_unique<faiss::IndexHNSWFlat>(dim_, settings_.hnsw_m, faiss::METRIC_INNER_PRODUCT);
    hnsw->hnsw.efConstruction = settings_.ef_construction;
    hnsw->hnsw.efSearch = settings_.ef_search;
    out.index = std::move(hnsw);
  } else {
    out.index = std::make_unique<faiss::IndexFlatIP>(dim_);
  }
  if (!slots.empty()) out.index->add(static_cast<FaissId>(slots.size()), vectors.data());
  out.alive.assign(slots.size(), 1);
  for (size_t row = 0; row < slots.size(); ++row) out.row_of[slots[row]] = static_cast<int>(row);
  out.slot_of = std::move(slots);
  out.vectors = std::move(vectors);
  return out;
}

bool ItemIndex::needs_rebuild(const std::vector<int>& slots) const {
  size_t replaced = 0;
  for (const int slot : slots) replaced += rows_.row_of.count(slot);
  const size_t live = size() + slots.size() - replaced;
  const size_t rows = rows_.slot_of.size() + slots.size();
  const size_t dead = rows - live;
  return kind_for(live) != rows_.kind || (rows >= kMinRebuildRows && dead > kDeadShare * rows);
}

IndexRows ItemIndex::rebuilt(const std::vector<int>& slots, const std::vector<float>& vectors) const {
  const std::unordered_set<int> fresh(slots.begin(), slots.end());
  std::vector<int> keep;
  std::vector<float> data;
  for (size_t row = 0; row < rows_.slot_of.size(); ++row) {
    if (!rows_.alive[row] || fresh.count(rows_.slot_of[row])) continue;
    keep.push_back(rows_.slot_of[row]);
    data.insert(data.end(), rows_.vectors.begin() + row * dim_, rows_.vectors.begin() + (row + 1) * dim_);
  }
  keep.insert(keep.end(), slots.begin(), slots.end());
  data.insert(data.end(), vectors.begin(), vectors.end());
  const std::string kind = kind_for(keep.size());  // before keep is moved into make's argument
  return make(kind, std::move(keep), std::move(data));
}

void ItemIndex::append(const std::vector<int>& slots, const std::vector<float>& vectors) {
  const int start = static_cast<int>(rows_.slot_of.size());
  rows_.index->add(static_cast<FaissId>(slots.size()), vectors.data());
  rows_.vectors.insert(rows_.vectors.end(), vectors.begin(), vectors.end());
  for (size_t i = 0; i < slots.size(); ++i) {
    if (const auto old = rows_.row_of.find(slots[i]); old != rows_.row_of.end()) rows_.alive[old->second] = 0;
    rows_.slot_of.push_back(slots[i]);
    rows_.alive.push_back(1);
    rows_.row_of[slots[i]] = start + static_cast<int>(i);
  }
}

void ItemIndex::search_rows(const float* query, int fetch, std::vector<FaissId>& labels,
                            std::vector<float>& scores) const {
  const size_t rows = rows_.slot_of.size();
  labels.assign(fetch, -1);
  scores.assign(fetch, 0.0f);
  if (static_cast<size_t>(fetch) >= rows && rows_.kind != "flat") {  // asking for everything: an exact scan
    std::vector<float> all(rows);
    for (size_t r = 0; r < rows; ++r) {
      const float* v = rows_.vectors.data() + r * dim_;
      all[r] = std::inner_product(v, v + dim_, query, 0.0f);
    }
    std::vector<FaissId> order(rows);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return all[a] > all[b]; });
    for (size_t i = 0; i < rows && i < labels.size(); ++i) {
      labels[i] = order[i];
      scores[i] = all[order[i]];
    }
    return;
  }
  rows_.index->search(1, query, fetch, scores.data(), labels.data());
}

std::vector<int> ItemIndex::search(const float* query, int k, const std::unordered_set<int>& exclude) const {
  const size_t live = size(), rows = rows_.slot_of.size();
  if (k <= 0 || live == 0) return {};
  std::unordered_set<FaissId> skip;
  for (const int slot : exclude) {
    if (const auto it = rows_.row_of.find(slot); it != rows_.row_of.end()) skip.insert(it->second);
  }
  const auto wanted = static_cast<size_t>(std::max<long>(0, std::min<long>(k, static_cast<long>(live - skip.size()))));
  auto fetch = static_cast<int>(
      std::min<double>(rows, std::ceil(static_cast<double>(k + skip.size()) * rows / live) + 8));
  std::vector<FaissId> labels;
  std::vector<float> scores;
  std::vector<int> out;
  while (true) {
    search_rows(query, fetch, labels, scores);
    out.clear();
    for (const auto row : labels) {
      if (out.size() >= wanted) break;
      if (row < 0 || !rows_.alive[row] || skip.count(row)) continue;
      out.push_back(rows_.slot_of[row]);
    }
    if (out.size() >= wanted || static_cast<size_t>(fetch) >= rows) break;
    fetch = static_cast<int>(std::min<size_t>(rows, static_cast<size_t>(fetch) * 2));
  }
  return out;
}

}  // namespace creatormesh::ranking
