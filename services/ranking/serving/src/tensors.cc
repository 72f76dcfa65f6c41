#include "tensors.h"

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace creatormesh::ranking {

Tensors load_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  uint64_t header_size = 0;
  in.read(reinterpret_cast<char*>(&header_size), sizeof header_size);
  if (!in || header_size > (100u << 20)) throw std::runtime_error(path + ": not a safetensors file");
  std::string header(header_size, '\0');
  in.read(header.data(), static_cast<std::streamsize>(header_size));
  const auto meta = nlohmann::json::parse(header);
  std::vector<char> data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Tensors out;
  for (const auto& [name, entry] : meta.items()) {
    if (name == "__metadata__") continue;
    Tensor t;
    t.dtype = entry.at("dtype").get<std::string>();
    t.shape = entry.at("shape").get<std::vector<int64_t>>();
    const auto offsets = entry.at("data_offsets").get<std::vector<uint64_t>>();
    if (t.dtype != "F32") throw std::runtime_error(path + ": " + name + " is " + t.dtype + ", expected F32");
    uint64_t count = 1;
    for (int64_t d : t.shape) count *= static_cast<uint64_t>(d);
    if (offsets.size() != 2 || offsets[1] > data.size() || offsets[1] - offsets[0] != count * sizeof(float))
      throw std::runtime_error(path + ": " + name + " has bad data offsets");
    t.values.resize(count);
    std::memcpy(t.values.data(), data.data() + offsets[0], count * sizeof(float));
    out.emplace(name, std::move(t));
  }
  return out;
}

const Tensor& tensor(const Tensors& tensors, const std::string& name, size_t dims) {
  const auto it = tensors.find(name);
  if (it == tensors.end()) throw std::runtime_error("checkpoint has no tensor " + name);
  if (it->second.shape.size() != dims) throw std::runtime_error("tensor " + name + " has the wrong rank");
  return it->second;
}

}  // namespace creatormesh::ranking
