// ranking-serving: the ranking service's compiled serving path (docs/services/ranking.md#compiled-serving).
//
//   ranking-serving embed --model DIR   JSON lines in ({"user_id", "interests", "history"}), JSON lines out
//                                       ({"user_vector", "sequence_state", "known"}): the models' inference,
//                                       checked against the Python recommender by the parity tests.
//   ranking-serving serve                the RankingService gRPC server; settings from the environment
//                                       (CREATORMESH_RANKING_*, CREATORMESH_REDIS_URL, CREATORMESH_GRPC_PORT and
//                                       CREATORMESH_RANKING_BACKEND, the Python service it forwards to).
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "checkpoint.h"
#include "models.h"
#include "server.h"

namespace ranking = creatormesh::ranking;

namespace {

int usage() {
  std::cerr << "usage: ranking-serving embed --model DIR | ranking-serving serve" << std::endl;
  return 2;
}

std::vector<float> to_list(const ranking::Vector& v) { return std::vector<float>(v.data(), v.data() + v.size()); }

int embed(const std::string& model_dir) {
  const auto checkpoint = ranking::Checkpoint::load(model_dir);
  const ranking::UserTower users(checkpoint);
  const ranking::SequenceModel sequence(checkpoint);
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line.empty()) continue;
    const auto in = nlohmann::json::parse(line);
    const auto user_id = in.value("user_id", std::string());
    const auto interests = in.value("interests", std::vector<std::string>());
    const auto history = in.value("history", std::vector<std::string>());
    const auto [state, known] = sequence.state(history);
    nlohmann::json out = {{"user_vector", to_list(users.vector(user_id, interests, history))},
                          {"sequence_state", to_list(state)},
                          {"known", known}};
    std::cout << out.dump() << '\n';
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  try {
    if (args.size() == 3 && args[0] == "embed" && args[1] == "--model") return embed(args[2]);
    if (args.size() == 1 && args[0] == "serve") return ranking::serve(ranking::ServerSettings::from_env());
  } catch (const std::exception& e) {
    std::cerr << "ranking-serving: " << e.what() << std::endl;
    return 1;
  }
  return usage();
}
