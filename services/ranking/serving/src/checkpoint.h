// A trained checkpoint as `creatormesh ranking train` writes it (metadata.json, two_tower.safetensors,
// sequence.safetensors, items.safetensors): vocabularies, model configuration and weights, the trained
// catalogue, calibration and the validated blend. Read-only once loaded.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "tensors.h"

namespace creatormesh::ranking {

constexpr int OOV = 0;  // index 0 of every id vocabulary: unknown users and items

struct Calibration {
  double mean = 0.0;
  double std = 1.0;
};

struct TrainedItem {
  std::vector<std::string> genres, tags;  // as metadata.json lists them
  double quality = 0.5;
};

struct Checkpoint {
  std::string version;
  // vocabularies (FeatureSpace): genre/tag -> position; item/user id -> embedding row (position + 1)
  std::unordered_map<std::string, int> genres, tags, item_rows, user_rows;
  // the trained catalogue (items.safetensors rows), in order, and each id's position in it
  std::vector<std::string> item_ids;
  std::vector<TrainedItem> trained;  // by position, like item_ids
  std::unordered_map<std::string, int> item_position;
  // two-tower configuration
  int dim = 0, history = 0, recent = 0;
  // sequence model configuration
  int sequence_dim = 0, layers = 0, heads = 0, max_len = 0;
  Tensors two_tower, sequence, items;
  Calibration two_tower_calibration, sequence_calibration;
  double blend_two_tower = 0.5, blend_sequence = 0.5;

  static Checkpoint load(const std::string& dir);

  int user_row(const std::string& user_id) const;
  int item_row(const std::string& item_id) const;
};

}  // namespace creatormesh::ranking
