// Reading safetensors files (https://github.com/huggingface/safetensors#format): an 8-byte little-endian header
// size, a JSON header {name: {dtype, shape, data_offsets}}, then the raw little-endian data.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace creatormesh::ranking {

struct Tensor {
  std::string dtype;  // "F32", "F64", "I64", ...
  std::vector<int64_t> shape;
  std::vector<float> values;  // F32 tensors only (what the checkpoint holds); others are rejected

  int64_t rows() const { return shape.empty() ? 1 : shape[0]; }
  int64_t cols() const { return shape.size() < 2 ? 1 : shape[1]; }
  const float* row(int64_t i) const { return values.data() + i * cols(); }
};

using Tensors = std::map<std::string, Tensor>;

// All tensors of a safetensors file; throws std::runtime_error naming the file on a malformed one.
Tensors load_safetensors(const std::string& path);

// The tensor called `name`, with `dims` dimensions; throws naming it when absent or of another rank.
const Tensor& tensor(const Tensors& tensors, const std::string& name, size_t dims);

}  // namespace creatormesh::ranking
