// The learned models' inference, as creatormesh/ranking/models.py and recommender.py compute it: the user tower
// of the two-tower model and the SASRec state of a viewer's history. float32, like torch on CPU.
#pragma once

#include <Eigen/Dense>
#include <string>
#include <utility>
#include <vector>

#include "checkpoint.h"

namespace creatormesh::ranking {

using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Vector = Eigen::VectorXf;
using MatrixMap = Eigen::Map<const Matrix>;
using VectorMap = Eigen::Map<const Vector>;

// nn.Linear: y = x W^T + b, over the rows of x.
struct Linear {
  MatrixMap weight;
  VectorMap bias;  // size 0: no bias
  Linear(const Tensors& tensors, const std::string& name, bool with_bias);
  Matrix operator()(const Matrix& x) const;
};

struct LayerNorm {
  VectorMap weight, bias;
  LayerNorm(const Tensors& tensors, const std::string& name);
  Matrix operator()(const Matrix& x) const;
};

// A unit-norm user vector from id, interests (genres/hashtags) and history (item ids, oldest first).
class UserTower {
 public:
  explicit UserTower(const Checkpoint& checkpoint);
  Vector vector(const std::string& user_id, const std::vector<std::string>& interests,
                const std::vector<std::string>& history) const;

 private:
  const Checkpoint& c_;
  MatrixMap ids_, history_;
  Linear interests_, hidden_, out_;
};

// SASRec's last-position state over the trained items of a history (oldest first), and whether it held any
// (without one, sequence scores are neutral).
class SequenceModel {
 public:
  explicit SequenceModel(const Checkpoint& checkpoint);
  std::pair<Vector, bool> state(const std::vector<std::string>& history) const;
  // The item embedding a state is multiplied with (recommender._sequence_table): the trained one for a trained
  // item with unchanged genres, else id (or OOV) + genre projection.
  Vector item(const std::string& item_id, const std::vector<std::string>& genres) const;

 private:
  struct Block {
    LayerNorm norm1, norm2;
    Linear qkv, out, ffn_in, ffn_out;
  };
  const Checkpoint& c_;
  MatrixMap table_, positions_, ids_, genres_;
  std::vector<Block> blocks_;
  LayerNorm norm_;
};

}  // namespace creatormesh::ranking
