// The compiled RankingService: RankForYou over the index is ranked here (C++, no GIL); calls it does not rank
// (requests carrying their own candidates, whose texts need the embedder, and the feature/interest RPCs) are
// forwarded to the Python ranking service, which also runs the consumers that write Redis.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "checkpoint.h"
#include "feature_store.h"
#include "ranker.h"
#include "redis.h"

namespace creatormesh::ranking {

// CREATORMESH_RANKING_* / CREATORMESH_* settings as the Python service reads them, plus where the Python
// service listens (CREATORMESH_RANKING_BACKEND, host:port).
struct ServerSettings {
  std::string model_path = ".creatormesh/ranking/model";
  std::string redis_url = "redis://127.0.0.1:6379/0";
  std::string redis_prefix = "ranking";
  std::string backend = "127.0.0.1:50052";
  std::string default_experiment = "overdrive";
  std::string host = "[::]";
  int port = 50051;
  int history_length = 50;
  int default_limit = 20;
  double default_diversity = 0.3;
  double overdrive_share = 0.5;
  double grace_seconds = 20.0, drain_delay_seconds = 0.0;
  RankerSettings ranker;

  static ServerSettings from_env();  // throws std::invalid_argument naming the variable
};

int serve(const ServerSettings& settings);

}  // namespace creatormesh::ranking
