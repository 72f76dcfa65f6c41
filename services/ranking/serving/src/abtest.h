// A/B arms as creatormesh/ranking/abtest.py chooses them: the seed's x-use-overdrive toggle, else deterministic
// bucketing of the user id (sha256 of "experiment\0user_id"), the same on every replica and across restarts.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>

namespace creatormesh::ranking {

struct Arm {
  std::string name;  // "overdrive" or "control"
  bool from_header = false;
};

double bucket_value(const std::string& user_id, const std::string& experiment);
// The arm forced by an x-use-overdrive value (nullopt when absent/blank); std::invalid_argument when unreadable.
std::optional<std::string> parse_toggle(const std::optional<std::string>& value);
Arm choose_arm(const std::string& user_id, const std::string& experiment, double overdrive_share,
               const std::optional<std::string>& toggle);

}  // namespace creatormesh::ranking
