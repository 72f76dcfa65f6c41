// ranking-redis-tool: the compiled path's Redis readers from the command line, for the parity tests.
//
//   ranking-redis-tool features --redis URL --prefix P --history-length N USER...
//       one JSON line per user: {"user_id", "found", "total_interactions", "interests", "recent", "history"}
//   ranking-redis-tool live-items --redis URL --prefix P [--follow SECONDS]
//       {"position", "items"} (load_all), then with --follow one {"items"} line per applied batch for SECONDS
#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "feature_store.h"
#include "live_items.h"
#include "redis.h"

namespace ranking = creatormesh::ranking;
using nlohmann::json;

namespace {

struct Usage : std::runtime_error {
  using std::runtime_error::runtime_error;
};

int usage(const std::string& why) {
  std::cerr << "ranking-redis-tool: " << why << "\n"
            << "usage: ranking-redis-tool features --redis URL [--prefix P] [--history-length N] USER...\n"
            << "       ranking-redis-tool live-items --redis URL [--prefix P] [--follow SECONDS]" << std::endl;
  return 2;
}

struct Args {
  std::map<std::string, std::string> options;
  std::vector<std::string> positional;
};

Args parse(const std::vector<std::string>& args, const std::vector<std::string>& known) {
  Args out;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i].rfind("--", 0) != 0) {
      out.positional.push_back(args[i]);
      continue;
    }
    if (std::find(known.begin(), known.end(), args[i]) == known.end()) throw Usage("unknown option " + args[i]);
    if (i + 1 == args.size()) throw Usage(args[i] + " needs a value");
    out.options[args[i]] = args[i + 1];
    ++i;
  }
  if (!out.options.count("--redis")) throw Usage("--redis is required");
  return out;
}

std::string option(const Args& a, const std::string& name, const std::string& fallback) {
  const auto it = a.options.find(name);
  return it == a.options.end() ? fallback : it->second;
}

double number(const std::string& name, const std::string& value) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(value, &used);
  } catch (const std::exception&) {
  }
  if (used == 0 || used != value.size()) throw Usage(name + " must be a number");
  return v;
}

json item_json(const ranking::StoredItem& item) {
  const auto optional = [](const std::optional<double>& v) { return v ? json(*v) : json(nullptr); };
  return {{"id", item.id},
          {"genres", item.genres},
          {"hashtags", item.hashtags},
          {"text", item.text},
          {"title", item.title},
          {"creator_id", item.creator_id},
          {"model_version", item.model_version},
          {"engagement_rate", optional(item.engagement_rate)},
          {"quality", optional(item.quality)},
          {"published_at", optional(item.published_at)},
          {"blocked", item.blocked},
          {"vector", item.vector}};
}

json items_json(const std::vector<ranking::StoredItem>& items) {
  json out = json::array();
  for (const auto& item : items) out.push_back(item_json(item));
  return out;
}

int features(const std::vector<std::string>& args) {
  const auto a = parse(args, {"--redis", "--prefix", "--history-length"});
  if (a.positional.empty()) throw Usage("no users given");
  const double length = number("--history-length", option(a, "--history-length", "50"));
  if (length < 1 || length != static_cast<int>(length)) throw Usage("--history-length must be a positive integer");
  const ranking::FeatureReader reader(option(a, "--prefix", "ranking"), static_cast<int>(length));
  ranking::Redis redis(a.options.at("--redis"));
  for (const auto& f : reader.read_many(redis, a.positional)) {
    json recent = json::array();
    for (const auto& r : f.recent)
      recent.push_back({{"item_id", r.item_id},
                        {"type", r.type},
                        {"occurred_at", r.occurred_at},
                        {"watch_seconds", r.watch_seconds}});
    const json out = {{"user_id", f.user_id},
                      {"found", f.found},
                      {"total_interactions", f.total_interactions},
                      {"interests", f.interests},
                      {"recent", recent},
                      {"history", f.history()}};
    std::cout << out.dump() << '\n';
  }
  std::cout.flush();
  return 0;
}

int live_items(const std::vector<std::string>& args) {
  const auto a = parse(args, {"--redis", "--prefix", "--follow"});
  if (!a.positional.empty()) throw Usage("unexpected argument " + a.positional[0]);
  const bool follow = a.options.count("--follow");
  const double seconds = follow ? number("--follow", a.options.at("--follow")) : 0;
  if (seconds < 0) throw Usage("--follow must not be negative");
  const ranking::LiveItemReader reader(option(a, "--prefix", "ranking"));
  ranking::Redis redis(a.options.at("--redis"));
  auto [items, position] = reader.load_all(redis);
  std::cout << json{{"position", position}, {"items", items_json(items)}}.dump() << std::endl;
  if (!follow) return 0;
  std::atomic<bool> stop{false};
  std::thread timer([&] {
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    stop = true;
  });
  const auto print = [](std::vector<ranking::StoredItem> batch) {
    std::cout << json{{"items", items_json(batch)}}.dump() << std::endl;
  };
  reader.follow(redis, position, print, stop);
  timer.join();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  try {
    if (args.empty()) throw Usage("no command given");
    const std::vector<std::string> rest(args.begin() + 1, args.end());
    if (args[0] == "features") return features(rest);
    if (args[0] == "live-items") return live_items(rest);
    throw Usage("unknown command " + args[0]);
  } catch (const Usage& e) {
    return usage(e.what());
  } catch (const std::exception& e) {
    std::cerr << "ranking-redis-tool: " << e.what() << std::endl;
    return 1;
  }
}
