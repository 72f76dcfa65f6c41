// Inner-product search over unit-norm item vectors with FAISS, as creatormesh/ranking/index.py (ItemIndex) does
// it for the service's "auto" kind: exact (IndexFlatIP) up to exact_max_items live items, HNSW above. Each vector
// is a row keyed by its catalogue slot; re-adding a slot marks its old row dead, searches over-fetch and drop dead
// and excluded rows (widening when too few are left), and the index is rebuilt when dead rows pass 20 % or the
// kind changes. Not thread-safe by itself: one writer, readers excluded by the ranker's lock while it writes.
#pragma once

#include <faiss/Index.h>

#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace creatormesh::ranking {

using FaissId = faiss::Index::idx_t;  // faiss::idx_t from FAISS 1.7.4 on

struct IndexSettings {
  int exact_max_items = 20000;
  int ef_search = 128;
  int hnsw_m = 32;
  int ef_construction = 200;
};

// The rows of one index; built apart (off the lock) when the writer rebuilds.
struct IndexRows {
  std::unique_ptr<faiss::Index> index;
  std::string kind;                       // "flat" or "hnsw"
  std::vector<int> slot_of;               // row -> slot
  std::vector<char> alive;                // row -> still its slot's current vector
  std::unordered_map<int, int> row_of;    // slot -> live row
  std::vector<float> vectors;             // row -> vector (for scans and rebuilds)
};

class ItemIndex {
 public:
  ItemIndex(int dim, IndexSettings settings);

  size_t size() const { return rows_.row_of.size(); }
  const std::string& kind() const { return rows_.kind; }

  // The writer: whether adding these slots needs a rebuild; the rebuilt rows (the live rows plus the batch, made
  // without touching this index's state, so readers may search meanwhile); installing them; or appending.
  bool needs_rebuild(const std::vector<int>& slots) const;
  IndexRows rebuilt(const std::vector<int>& slots, const std::vector<float>& vectors) const;
  void install(IndexRows rows) { rows_ = std::move(rows); }
  void append(const std::vector<int>& slots, const std::vector<float>& vectors);

  // The k slots with the highest inner product with `query`, best first, never an excluded slot.
  std::vector<int> search(const float* query, int k, const std::unordered_set<int>& exclude) const;

 private:
  std::string kind_for(size_t live) const;
  IndexRows make(const std::string& kind, std::vector<int> slots, std::vector<float> vectors) const;
  void search_rows(const float* query, int fetch, std::vector<FaissId>& labels, std::vector<float>& scores) const;

  int dim_;
  IndexSettings settings_;
  IndexRows rows_;
};

}  // namespace creatormesh::ranking
