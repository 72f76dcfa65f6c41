#include "checkpoint.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

namespace creatormesh::ranking {
namespace {

std::unordered_map<std::string, int> positions(const nlohmann::json& names, int first) {
  std::unordered_map<std::string, int> out;
  int i = first;
  for (const auto& name : names) out.emplace(name.get<std::string>(), i++);
  return out;
}

}  // namespace

Checkpoint Checkpoint::load(const std::string& dir) {
  std::ifstream in(dir + "/metadata.json");
  if (!in) throw std::runtime_error("no checkpoint at " + dir + " (metadata.json missing)");
  std::stringstream text;
  text << in.rdbuf();
  const auto meta = nlohmann::json::parse(text.str());
  Checkpoint c;
  c.version = meta.at("version").get<std::string>();
  const auto& vocab = meta.at("vocabularies");
  c.genres = positions(vocab.at("genres"), 0);
  c.tags = positions(vocab.at("tags"), 0);
  c.item_rows = positions(vocab.at("items"), 1);
  c.user_rows = positions(vocab.at("users"), 1);
  for (const auto& row : meta.at("items")) {
    c.item_ids.push_back(row.at("id").get<std::string>());
    c.trained.push_back({row.at("genres").get<std::vector<std::string>>(),
                         row.at("tags").get<std::vector<std::string>>(), row.at("quality").get<double>()});
  }
  for (size_t i = 0; i < c.item_ids.size(); ++i) c.item_position.emplace(c.item_ids[i], static_cast<int>(i));
  const auto& tt = meta.at("config").at("two_tower");
  c.dim = tt.at("dim").get<int>();
  c.history = tt.at("history").get<int>();
  c.recent = tt.at("recent").get<int>();
  const auto& seq = meta.at("config").at("sequence");
  c.sequence_dim = seq.at("dim").get<int>();
  c.layers = seq.at("layers").get<int>();
  c.heads = seq.at("heads").get<int>();
  c.max_len = seq.at("max_len").get<int>();
  const auto& cal = meta.at("calibration");
  c.two_tower_calibration = {cal.at("two_tower").at("mean").get<double>(), cal.at("two_tower").at("std").get<double>()};
  c.sequence_calibration = {cal.at("sequence").at("mean").get<double>(), cal.at("sequence").at("std").get<double>()};
  c.blend_two_tower = meta.at("blend").at("two_tower").get<double>();
  c.blend_sequence = meta.at("blend").at("sequence").get<double>();
  c.two_tower = load_safetensors(dir + "/two_tower.safetensors");
  c.sequence = load_safetensors(dir + "/sequence.safetensors");
  c.items = load_safetensors(dir + "/items.safetensors");
  if (tensor(c.items, "sequence_embeddings", 2).rows() != static_cast<int64_t>(c.item_ids.size()))
    throw std::runtime_error("items.safetensors does not match metadata.json's items");
  return c;
}

int Checkpoint::user_row(const std::string& user_id) const {
  const auto it = user_rows.find(user_id);
  return it == user_rows.end() ? OOV : it->second;
}

int Checkpoint::item_row(const std::string& item_id) const {
  const auto it = item_rows.find(item_id);
  return it == item_rows.end() ? OOV : it->second;
}

}  // namespace creatormesh::ranking
