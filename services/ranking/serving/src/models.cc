#include "models.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <set>

namespace creatormesh::ranking {
namespace {

constexpr float kLayerNormEps = 1e-5f;  // torch.nn.LayerNorm's default
constexpr float kNormalizeEps = 1e-12f;  // torch.nn.functional.normalize's default

MatrixMap matrix(const Tensor& t) { return MatrixMap(t.values.data(), t.rows(), t.cols()); }

VectorMap vector_of(const Tensors& tensors, const std::string& name) {
  const Tensor& t = tensor(tensors, name, 1);
  return VectorMap(t.values.data(), t.rows());
}

float gelu(float x) { return 0.5f * x * (1.0f + std::erf(x * static_cast<float>(M_SQRT1_2))); }

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char ch) { return std::tolower(ch); });
  return text;
}

Vector normalized(const Vector& x) { return x / std::max(x.norm(), kNormalizeEps); }

}  // namespace

Linear::Linear(const Tensors& tensors, const std::string& name, bool with_bias)
    : weight(matrix(tensor(tensors, name + ".weight", 2))),
      bias(with_bias ? vector_of(tensors, name + ".bias") : VectorMap(nullptr, 0)) {}

Matrix Linear::operator()(const Matrix& x) const {
  Matrix y = x * weight.transpose();
  if (bias.size()) y.rowwise() += bias.transpose();
  return y;
}

LayerNorm::LayerNorm(const Tensors& tensors, const std::string& name)
    : weight(vector_of(tensors, name + ".weight")), bias(vector_of(tensors, name + ".bias")) {}

Matrix LayerNorm::operator()(const Matrix& x) const {
  Matrix y(x.rows(), x.cols());
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    const float mean = x.row(i).mean();
    const float var = (x.row(i).array() - mean).square().mean();
    y.row(i) = ((x.row(i).array() - mean) / std::sqrt(var + kLayerNormEps)) * weight.transpose().array() +
               bias.transpose().array();
  }
  return y;
}

UserTower::UserTower(const Checkpoint& c)
    : c_(c),
      ids_(matrix(tensor(c.two_tower, "user.ids.weight", 2))),
      history_(matrix(tensor(c.two_tower, "user.history.weight", 2))),
      interests_(c.two_tower, "user.interests", false),
      hidden_(c.two_tower, "user.mlp.0", true),
      out_(c.two_tower, "user.mlp.3", true) {}

Vector UserTower::vector(const std::string& user_id, const std::vector<std::string>& interests,
                         const std::vector<std::string>& history) const {
  const int dim = c_.dim;
  // interests: multi-hot over genres, then over hashtags scaled to sum 1 (FeatureSpace.genre/tag_vector)
  Matrix multi_hot = Matrix::Zero(1, static_cast<Eigen::Index>(c_.genres.size() + c_.tags.size()));
  float tag_total = 0.0f;
  for (const auto& interest : interests) {
    const std::string name = lower(interest);
    if (const auto g = c_.genres.find(name); g != c_.genres.end()) multi_hot(0, g->second) = 1.0f;
    const std::string tag = name.substr(std::min(name.find_first_not_of('#'), name.size()));
    if (const auto t = c_.tags.find(tag); t != c_.tags.end()) {
      const auto col = static_cast<Eigen::Index>(c_.genres.size()) + t->second;
      tag_total += multi_hot(0, col) == 0.0f ? 1.0f : 0.0f;
      multi_hot(0, col) = 1.0f;
    }
  }
  if (tag_total > 0.0f) multi_hot.rightCols(static_cast<Eigen::Index>(c_.tags.size())) /= tag_total;
  // history: the last `history` entries (unknown ids are padding), mean-pooled, and the last `recent` of them
  const size_t length = static_cast<size_t>(c_.history);
  const size_t start = history.size() > length ? history.size() - length : 0;
  const size_t recent_from = length - static_cast<size_t>(c_.recent);  // in the left-padded window
  const size_t pad = length - (history.size() - start);
  Vector pooled = Vector::Zero(dim), recent = Vector::Zero(dim);
  int count = 0, recent_count = 0;
  for (size_t k = start; k < history.size(); ++k) {
    const int row = c_.item_row(history[k]);
    if (row == OOV) continue;
    pooled += history_.row(row).transpose();
    ++count;
    if (pad + (k - start) >= recent_from) {
      recent += history_.row(row).transpose();
      ++recent_count;
    }
  }
  pooled /= static_cast<float>(std::max(count, 1));
  recent /= static_cast<float>(std::max(recent_count, 1));
  Matrix x(1, 4 * dim);
  x.block(0, 0, 1, dim) = ids_.row(c_.user_row(user_id));
  x.block(0, dim, 1, dim) = interests_(multi_hot);
  x.block(0, 2 * dim, 1, dim) = pooled.transpose();
  x.block(0, 3 * dim, 1, dim) = recent.transpose();
  Matrix h = hidden_(x).unaryExpr(&gelu);
  return normalized(out_(h).row(0).transpose());
}

SequenceModel::SequenceModel(const Checkpoint& c)
    : c_(c),
      table_(matrix(tensor(c.items, "sequence_embeddings", 2))),
      positions_(matrix(tensor(c.sequence, "positions.weight", 2))),
      ids_(matrix(tensor(c.sequence, "ids.weight", 2))),
      genres_(matrix(tensor(c.sequence, "genres.weight", 2))),
      norm_(c.sequence, "norm") {
  for (int i = 0; i < c.layers; ++i) {
    const std::string p = "blocks." + std::to_string(i) + ".";
    blocks_.push_back(Block{LayerNorm(c.sequence, p + "norm1"), LayerNorm(c.sequence, p + "norm2"),
                            Linear(c.sequence, p + "qkv", true), Linear(c.sequence, p + "out", true),
                            Linear(c.sequence, p + "ffn.0", true), Linear(c.sequence, p + "ffn.3", true)});
  }
}

std::pair<Vector, bool> SequenceModel::state(const std::vector<std::string>& history) const {
  std::vector<int> rows;  // the trained items of the history, the last max_len of them
  for (const auto& item : history) {
    const auto it = c_.item_position.find(item);
    if (it != c_.item_position.end()) rows.push_back(it->second);
  }
  if (rows.size() > static_cast<size_t>(c_.max_len)) rows.erase(rows.begin(), rows.end() - c_.max_len);
  if (rows.empty()) return {norm_.bias, false};  // an all-padding sequence: LayerNorm(0) = its bias
  // Padded positions never reach a real one (causal mask over valid items), so only the real rows are computed:
  // they sit at the last L of the max_len positions.
  const auto L = static_cast<Eigen::Index>(rows.size());
  const int d = c_.sequence_dim, hd = d / c_.heads;
  Matrix x(L, d);
  for (Eigen::Index i = 0; i < L; ++i)
    x.row(i) = table_.row(rows[i]) * std::sqrt(static_cast<float>(d)) + positions_.row(c_.max_len - L + i);
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  for (const Block& b : blocks_) {
    const Matrix qkv = b.qkv(b.norm1(x));
    Matrix attended(L, d);
    for (int h = 0; h < c_.heads; ++h) {
      const auto q = qkv.middleCols(h * hd, hd), k = qkv.middleCols(d + h * hd, hd);
      const auto v = qkv.middleCols(2 * d + h * hd, hd);
      Matrix scores = (q * k.transpose()) * scale;
      for (Eigen::Index i = 0; i < L; ++i) {
        for (Eigen::Index j = i + 1; j < L; ++j) scores(i, j) = -std::numeric_limits<float>::infinity();
        const float top = scores.row(i).maxCoeff();
        scores.row(i) = (scores.row(i).array() - top).exp();
        scores.row(i) /= scores.row(i).sum();
      }
      attended.middleCols(h * hd, hd) = scores * v;
    }
    x += b.out(attended);
    x += b.ffn_out(b.ffn_in(b.norm2(x)).unaryExpr(&gelu));
  }
  return {norm_(x.bottomRows(1)).row(0).transpose(), true};
}

Vector SequenceModel::item(const std::string& item_id, const std::vector<std::string>& genres) const {
  const auto at = c_.item_position.find(item_id);
  if (at != c_.item_position.end()) {
    const auto& trained = c_.trained[at->second].genres;
    std::set<std::string> given, known(trained.begin(), trained.end());
    for (const auto& g : genres) given.insert(lower(g));
    if (genres == trained || given == known) return table_.row(at->second).transpose();
  }
  std::set<int> columns;  // a multi-hot: a genre given twice counts once
  for (const auto& g : genres) {
    if (const auto it = c_.genres.find(lower(g)); it != c_.genres.end()) columns.insert(it->second);
  }
  Vector out = ids_.row(c_.item_row(item_id)).transpose();
  for (const int col : columns) out += genres_.col(col);
  return out;
}

}  // namespace creatormesh::ranking
