#include "server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "abtest.h"
#include "creatormesh/ranking/v1/ranking.grpc.pb.h"
#include "live_items.h"

namespace creatormesh::ranking {
namespace {

namespace pb = ::creatormesh::ranking::v1;
constexpr const char* kService = "creatormesh.ranking.v1.RankingService";
constexpr const char* kToggle = "x-use-overdrive";
constexpr size_t kMaxExclude = 5000;

std::string env(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value && *value ? std::string(value) : fallback;
}

template <typename T>
T env_number(const char* name, T fallback) {
  const char* value = std::getenv(name);
  if (!value || !*value) return fallback;
  try {
    size_t used = 0;
    T out;
    if constexpr (std::is_integral_v<T>) {
      out = static_cast<T>(std::stoll(value, &used));
    } else {
      out = static_cast<T>(std::stod(value, &used));
    }
    if (used != std::string(value).size()) throw std::invalid_argument("trailing characters");
    return out;
  } catch (const std::exception&) {
    throw std::invalid_argument(std::string(name) + " must be a number, got '" + value + "'");
  }
}

// Python's repr of a float, as the Python service's messages show it.
std::string repr(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  char buffer[64];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, x);
  std::string out(buffer, end);
  if (out.find_first_of(".e") == std::string::npos) out += ".0";
  return out;
}

size_t code_points(const std::string& s) {
  size_t n = 0;
  for (const unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

bool blank(const std::string& s) { return s.find_first_not_of(" \t\n\r\f\v") == std::string::npos; }

grpc::Status invalid(const std::string& field, const std::string& message) {
  return {grpc::StatusCode::INVALID_ARGUMENT, field + ": " + message};
}

std::optional<std::string> header(const grpc::ServerContext* context, const char* name) {
  const auto& metadata = context->client_metadata();
  const auto it = metadata.find(name);
  if (it == metadata.end()) return std::nullopt;
  return std::string(it->second.data(), it->second.size());
}

class Service final : public pb::RankingService::Service {
 public:
  Service(const ServerSettings& settings, const Ranker& ranker, RedisPool& redis,
          std::shared_ptr<grpc::Channel> backend)
      : s_(settings),
        ranker_(ranker),
        redis_(redis),
        features_(settings.redis_prefix, settings.history_length),
        backend_(pb::RankingService::NewStub(backend)) {}

  void set_ready() { ready_ = true; }

  grpc::Status RankForYou(grpc::ServerContext* context, const pb::RankForYouRequest* request,
                          pb::RankForYouResponse* response) override {
    if (request->candidate_items_size() > 0) {  // their texts need the embedder: the Python service ranks them
      return forward(&Stub::RankForYou, context, *request, response);
    }
    if (!ready_) return {grpc::StatusCode::FAILED_PRECONDITION, "the ranking models are not loaded yet"};
    if (code_points(request->experiment()) > 128) return invalid("experiment", "must be at most 128 characters");
    const std::string experiment = request->experiment().empty() ? s_.default_experiment : request->experiment();
    Arm arm;
    try {
      arm = choose_arm(request->user_id(), experiment, s_.overdrive_share, header(context, kToggle));
    } catch (const std::invalid_argument& e) {
      return invalid(kToggle, e.what());
    }
    if (blank(request->user_id())) return invalid("user_id", "is required");
    if (code_points(request->user_id()) > 256) return invalid("user_id", "must be at most 256 characters");
    if (request->limit() < 0 || request->limit() > 500)
      return invalid("limit", "must be 1..500 (0 = " + std::to_string(s_.default_limit) + "), got " +
                                  std::to_string(request->limit()));
    RankRequest req;
    req.diversity = s_.default_diversity;
    if (request->has_diversity()) {
      const double d = request->diversity();
      if (!std::isfinite(d) || d < 0.0 || d > 1.0) return invalid("diversity", "must be in [0, 1], got " + repr(d));
      req.diversity = d;
    }
    if (static_cast<size_t>(request->exclude_item_ids_size()) > kMaxExclude)
      return invalid("exclude_item_ids", "at most " + std::to_string(kMaxExclude) + " allowed");
    req.user_id = request->user_id();
    req.limit = request->limit() ? request->limit() : s_.default_limit;
    req.exclude.assign(request->exclude_item_ids().begin(), request->exclude_item_ids().end());
    req.control = arm.name == "control";
    req.now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    UserFeatures features;
    try {
      auto conn = redis_.take();
      features = features_.read(*conn, req.user_id);
    } catch (const std::exception& e) {
      return {grpc::StatusCode::UNAVAILABLE, std::string("feature store: ") + e.what()};
    }
    const Page page = ranker_.rank(req, features);
    write(page, experiment, arm, response);
    return grpc::Status::OK;
  }

  grpc::Status GetFeatures(grpc::ServerContext* context, const pb::GetFeaturesRequest* request,
                           pb::GetFeaturesResponse* response) override {
    return forward(&Stub::GetFeatures, context, *request, response);
  }

  grpc::Status GetInsights(grpc::ServerContext* context, const pb::GetInsightsRequest* request,
                           pb::GetInsightsResponse* response) override {
    return forward(&Stub::GetInsights, context, *request, response);
  }

  grpc::Status GetInterests(grpc::ServerContext* context, const pb::GetInterestsRequest* request,
                            pb::GetInterestsResponse* response) override {
    return forward(&Stub::GetInterests, context, *request, response);
  }

  grpc::Status SetInterests(grpc::ServerContext* context, const pb::SetInterestsRequest* request,
                            pb::SetInterestsResponse* response) override {
    return forward(&Stub::SetInterests, context, *request, response);
  }

 private:
  using Stub = pb::RankingService::Stub;

  // A call for the Python service, with the caller's metadata (the A/B toggle, tracing) and deadline.
  template <typename Request, typename Response>
  grpc::Status forward(grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
                       const grpc::ServerContext* context, const Request& request, Response* response) {
    grpc::ClientContext client;
    for (const auto& [key, value] : context->client_metadata()) {
      const std::string k(key.data(), key.size());
      if (k.rfind("grpc-", 0) == 0 || k == "user-agent" || k[0] == ':') continue;
      client.AddMetadata(k, std::string(value.data(), value.size()));
    }
    if (context->deadline() != std::chrono::system_clock::time_point::max()) client.set_deadline(context->deadline());
    return (backend_.get()->*method)(&client, request, response);
  }

  void write(const Page& page, const std::string& experiment, const Arm& arm, pb::RankForYouResponse* out) const {
    out->set_user_state(page.warm ? pb::USER_STATE_WARM : pb::USER_STATE_COLD);
    out->set_blend_weight(page.blend_weight);
    out->set_experiment(experiment);
    out->set_arm(arm.name);
    out->set_arm_source(arm.from_header ? pb::ARM_SOURCE_HEADER : pb::ARM_SOURCE_BUCKET);
    out->set_model_version(ranker_.version());
    out->set_intra_list_diversity(page.intra_list_diversity);
    out->set_coverage(page.coverage);
    out->set_candidates_considered(page.considered);
    out->set_candidate_source(pb::CANDIDATE_SOURCE_INDEX);
    out->mutable_items()->Reserve(static_cast<int>(page.items.size()));
    int rank = 0;
    for (const ScoredItem& s : page.items) {
      pb::RankedItem* item = out->add_items();
      item->set_item_id(s.item->id);
      item->set_rank(++rank);
      item->set_score(s.score);
      pb::ScoreBreakdown* b = item->mutable_breakdown();
      b->set_two_tower(s.two_tower);
      b->set_sequence(s.sequence);
      b->set_quality(s.quality);
      b->set_freshness(s.freshness);
      b->set_interest_match(s.interest_match);
      b->set_blend_weight(page.blend_weight);
      b->set_diversity_penalty(s.diversity_penalty);
      if (!s.item->creator_id.empty()) item->set_creator_id(s.item->creator_id);
      for (const auto& label : s.item->labels) item->add_genres(label);
    }
  }

  const ServerSettings& s_;
  const Ranker& ranker_;
  RedisPool& redis_;
  FeatureReader features_;
  std::unique_ptr<pb::RankingService::Stub> backend_;
  std::atomic<bool> ready_{false};
};

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop = true; }

void log(const std::string& message) { std::cerr << "ranking-serving: " << message << std::endl; }

}  // namespace

ServerSettings ServerSettings::from_env() {
  ServerSettings s;
  s.model_path = env("CREATORMESH_RANKING_MODEL_PATH", s.model_path);
  s.redis_url = env("CREATORMESH_REDIS_URL", s.redis_url);
  s.redis_prefix = env("CREATORMESH_RANKING_REDIS_PREFIX", s.redis_prefix);
  s.backend = env("CREATORMESH_RANKING_BACKEND", s.backend);
  s.default_experiment = env("CREATORMESH_RANKING_DEFAULT_EXPERIMENT", s.default_experiment);
  s.host = env("CREATORMESH_GRPC_HOST", s.host);
  s.port = env_number("CREATORMESH_GRPC_PORT", s.port);
  s.history_length = env_number("CREATORMESH_RANKING_HISTORY_LENGTH", s.history_length);
  s.default_limit = env_number("CREATORMESH_RANKING_DEFAULT_LIMIT", s.default_limit);
  s.default_diversity = env_number("CREATORMESH_RANKING_DEFAULT_DIVERSITY", s.default_diversity);
  s.overdrive_share = env_number("CREATORMESH_RANKING_OVERDRIVE_SHARE", s.overdrive_share);
  s.grace_seconds = env_number("CREATORMESH_GRACE_SECONDS", s.grace_seconds);
  s.drain_delay_seconds = env_number("CREATORMESH_DRAIN_DELAY_SECONDS", s.drain_delay_seconds);
  auto& r = s.ranker;
  r.warm_after_interactions = env_number("CREATORMESH_RANKING_WARM_AFTER_INTERACTIONS", r.warm_after_interactions);
  r.retrieval_candidates = env_number("CREATORMESH_RANKING_RETRIEVAL_CANDIDATES", r.retrieval_candidates);
  r.cold_min_quality = env_number("CREATORMESH_RANKING_COLD_MIN_QUALITY", r.cold_min_quality);
  r.quality_weight = env_number("CREATORMESH_RANKING_QUALITY_WEIGHT", r.quality_weight);
  r.freshness_weight = env_number("CREATORMESH_RANKING_FRESHNESS_WEIGHT", r.freshness_weight);
  r.freshness_half_life_hours = env_number("CREATORMESH_RANKING_FRESHNESS_HALF_LIFE_HOURS", r.freshness_half_life_hours);
  r.index.exact_max_items = env_number("CREATORMESH_RANKING_EXACT_INDEX_MAX_ITEMS", r.index.exact_max_items);
  r.index.ef_search = env_number("CREATORMESH_RANKING_HNSW_EF_SEARCH", r.index.ef_search);
  if (r.warm_after_interactions < 1) throw std::invalid_argument("CREATORMESH_RANKING_WARM_AFTER_INTERACTIONS must be >= 1");
  if (s.default_limit < 1 || s.default_limit > 500) throw std::invalid_argument("CREATORMESH_RANKING_DEFAULT_LIMIT must be 1..500");
  if (s.history_length < 1) throw std::invalid_argument("CREATORMESH_RANKING_HISTORY_LENGTH must be >= 1");
  if (r.freshness_half_life_hours <= 0) throw std::invalid_argument("CREATORMESH_RANKING_FRESHNESS_HALF_LIFE_HOURS must be > 0");
  return s;
}

int serve(const ServerSettings& s) {
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  const Checkpoint checkpoint = Checkpoint::load(s.model_path);
  Ranker ranker(checkpoint, s.ranker);
  RedisPool redis(s.redis_url);
  Service service(s, ranker, redis, grpc::CreateChannel(s.backend, grpc::InsecureChannelCredentials()));

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(s.host + ":" + std::to_string(s.port), grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) throw std::runtime_error("cannot listen on port " + std::to_string(s.port));
  auto* health = server->GetHealthCheckService();
  health->SetServingStatus("", false);
  health->SetServingStatus(kService, false);
  std::cout << "ranking-serving listening on port " << port << " (NOT_SERVING until loaded)" << std::endl;

  ranker.add_trained();
  LiveItemReader live(s.redis_prefix);
  std::string position;
  {
    auto conn = redis.take();
    auto [stored, at] = live.load_all(*conn);
    position = at;
    ranker.add_items(stored);
  }
  std::thread follower([&] {
    Redis conn(s.redis_url, 5.0);
    live.follow(conn, position, [&](std::vector<StoredItem> items) { ranker.add_items(items); }, g_stop);
  });
  // warm-up: SERVING means a ranking has run
  UserFeatures nobody;
  nobody.user_id = "warm-up";
  RankRequest warm_up;
  warm_up.user_id = "warm-up";
  ranker.rank(warm_up, nobody);
  service.set_ready();
  health->SetServingStatus("", true);
  health->SetServingStatus(kService, true);
  log("SERVING: model " + checkpoint.version + ", " + std::to_string(ranker.size()) + " items (" +
      std::to_string(ranker.skipped()) + " live items of another model version skipped), index " +
      ranker.index_kind());

  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  health->SetServingStatus("", false);
  health->SetServingStatus(kService, false);
  log("shutting down: NOT_SERVING, draining");
  std::this_thread::sleep_for(std::chrono::duration<double>(s.drain_delay_seconds));
  server->Shutdown(std::chrono::system_clock::now() +
                   std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::duration<double>(s.grace_seconds)));
  follower.join();
  log("stopped");
  return 0;
}

}  // namespace creatormesh::ranking
