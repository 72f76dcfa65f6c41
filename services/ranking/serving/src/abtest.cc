#include "abtest.h"

#include <openssl/sha.h>

#include <algorithm>
#include <cctype>
#include <set>

namespace creatormesh::ranking {
namespace {

std::string strip(const std::string& s) {
  const auto first = s.find_first_not_of(" \t\n\r\f\v");
  if (first == std::string::npos) return "";
  return s.substr(first, s.find_last_not_of(" \t\n\r\f\v") - first + 1);
}

}  // namespace

double bucket_value(const std::string& user_id, const std::string& experiment) {
  std::string key = experiment;
  key.push_back('\0');
  key += user_id;
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), digest);
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value = (value << 8) | digest[i];
  return static_cast<double>(value) / 18446744073709551616.0;  // 2^64
}

std::optional<std::string> parse_toggle(const std::optional<std::string>& value) {
  if (!value || strip(*value).empty()) return std::nullopt;
  std::string v = strip(*value);
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
  static const std::set<std::string> on{"1", "true", "on", "yes", "overdrive"}, off{"0", "false", "off", "no", "control"};
  if (on.count(v)) return std::string("overdrive");
  if (off.count(v)) return std::string("control");
  throw std::invalid_argument("x-use-overdrive must be 1/0/true/false, got '" + *value + "'");
}

Arm choose_arm(const std::string& user_id, const std::string& experiment, double overdrive_share,
               const std::optional<std::string>& toggle) {
  if (const auto forced = parse_toggle(toggle)) return {*forced, true};
  return {bucket_value(user_id, experiment) < overdrive_share ? "overdrive" : "control", false};
}

}  // namespace creatormesh::ranking
