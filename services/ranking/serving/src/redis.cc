#include "redis.h"

#include <sys/time.h>

#include <cmath>
#include <cstdlib>

namespace creatormesh::ranking {
namespace {

struct Url {
  std::string host = "localhost", user, password;
  int port = 6379;
  std::string db;  // empty: not given
};

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// %XX escapes, as redis-py unquotes the user name and password.
std::string unquote(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex_digit(s[i + 1]) >= 0 && hex_digit(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_digit(s[i + 1]) * 16 + hex_digit(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

bool all_digits(const std::string& s) {
  return !s.empty() && s.size() <= 9 && s.find_first_not_of("0123456789") == std::string::npos;
}

// redis://[[user]:password@]host[:port][/db]
Url parse_url(const std::string& url) {
  const std::string scheme = "redis://";
  if (url.compare(0, scheme.size(), scheme) != 0) throw RedisError("not a redis:// URL");
  std::string rest = url.substr(scheme.size());
  if (rest.find_first_of("?#") != std::string::npos) throw RedisError("Redis URL options are not supported");
  Url u;
  const size_t slash = rest.find('/');
  if (slash != std::string::npos) {
    u.db = rest.substr(slash + 1);
    rest.resize(slash);
    if (!u.db.empty() && !all_digits(u.db)) throw RedisError("bad database number in the Redis URL");
  }
  if (const size_t at = rest.rfind('@'); at != std::string::npos) {
    const std::string userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    const size_t colon = userinfo.find(':');
    u.user = unquote(userinfo.substr(0, colon));
    if (colon != std::string::npos) u.password = unquote(userinfo.substr(colon + 1));
  }
  std::string port;
  if (!rest.empty() && rest[0] == '[') {  // [IPv6]
    const size_t close = rest.find(']');
    if (close == std::string::npos) throw RedisError("bad host in the Redis URL");
    u.host = rest.substr(1, close - 1);
    if (close + 1 < rest.size()) {
      if (rest[close + 1] != ':') throw RedisError("bad host in the Redis URL");
      port = rest.substr(close + 2);
    }
  } else {
    const size_t colon = rest.rfind(':');
    if (colon != std::string::npos) {
      port = rest.substr(colon + 1);
      rest.resize(colon);
    }
    if (!rest.empty()) u.host = rest;
  }
  if (!port.empty()) {
    if (!all_digits(port) || std::atoi(port.c_str()) < 1 || std::atoi(port.c_str()) > 65535)
      throw RedisError("bad port in the Redis URL");
    u.port = std::atoi(port.c_str());
  }
  return u;
}

timeval to_timeval(double seconds) {
  if (!(seconds > 0)) return {0, 0};  // no timeout
  timeval tv;
  tv.tv_sec = static_cast<time_t>(seconds);
  tv.tv_usec = static_cast<suseconds_t>(std::lround((seconds - static_cast<double>(tv.tv_sec)) * 1e6));
  return tv;
}

struct Argv {
  explicit Argv(const std::vector<std::string>& args) {
    for (const auto& a : args) {
      ptrs.push_back(a.data());
      lens.push_back(a.size());
    }
  }
  std::vector<const char*> ptrs;
  std::vector<size_t> lens;
};

// On a connection error hiredis leaves the context unusable: drop it, the next call reconnects.
RedisError dropped(redisContext*& ctx) {
  const std::string error = ctx->errstr[0] ? ctx->errstr : "connection lost";
  redisFree(ctx);
  ctx = nullptr;
  return RedisError("Redis connection error: " + error);
}

}  // namespace

Redis::Redis(std::string url, double timeout_seconds) : url_(std::move(url)), timeout_(timeout_seconds) {
  connect();
}

Redis::~Redis() {
  if (ctx_) redisFree(ctx_);
}

void Redis::connect() {
  const Url u = parse_url(url_);
  const std::string where = u.host + ":" + std::to_string(u.port);
  const timeval tv = to_timeval(timeout_);
  redisContext* ctx = timeout_ > 0 ? redisConnectWithTimeout(u.host.c_str(), u.port, tv)
                                   : redisConnect(u.host.c_str(), u.port);
  if (!ctx) throw RedisError("cannot connect to Redis at " + where + ": out of memory");
  if (ctx->err) {
    const std::string error = ctx->errstr;
    redisFree(ctx);
    throw RedisError("cannot connect to Redis at " + where + ": " + error);
  }
  if (timeout_ > 0) redisSetTimeout(ctx, tv);
  ctx_ = ctx;
  try {
    if (!u.password.empty() || !u.user.empty()) {
      if (u.user.empty())
        command({"AUTH", u.password});
      else
        command({"AUTH", u.user, u.password});
    }
    if (!u.db.empty()) command({"SELECT", u.db});
  } catch (const RedisError& e) {
    if (ctx_) redisFree(ctx_);
    ctx_ = nullptr;
    throw RedisError("Redis at " + where + ": " + e.what());
  }
}

void Redis::set_timeout(double seconds) {
  timeout_ = seconds;
  if (ctx_) redisSetTimeout(ctx_, to_timeval(seconds));
}

Reply Redis::command(const std::vector<std::string>& args) {
  if (!ctx_) connect();
  Argv argv(args);
  Reply reply(static_cast<redisReply*>(
      redisCommandArgv(ctx_, static_cast<int>(args.size()), argv.ptrs.data(), argv.lens.data())));
  if (!reply) throw dropped(ctx_);
  if (reply->type == REDIS_REPLY_ERROR) throw RedisError(std::string(reply->str, reply->len));
  return reply;
}

std::vector<Reply> Redis::pipeline(const std::vector<std::vector<std::string>>& commands) {
  std::vector<Reply> out;
  if (commands.empty()) return out;
  if (!ctx_) connect();
  for (const auto& args : commands) {
    Argv argv(args);
    if (redisAppendCommandArgv(ctx_, static_cast<int>(args.size()), argv.ptrs.data(), argv.lens.data()) != REDIS_OK)
      throw dropped(ctx_);
  }
  for (size_t i = 0; i < commands.size(); ++i) {
    void* reply = nullptr;
    if (redisGetReply(ctx_, &reply) != REDIS_OK || !reply) throw dropped(ctx_);
    out.emplace_back(static_cast<redisReply*>(reply));
  }
  return out;
}

RedisPool::Lease RedisPool::take() {
  std::unique_ptr<Redis> conn;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!idle_.empty()) {
      conn = std::move(idle_.back());
      idle_.pop_back();
    }
  }
  if (!conn) conn = std::make_unique<Redis>(url_);
  return Lease(*this, std::move(conn));
}

void RedisPool::give_back(std::unique_ptr<Redis> conn) {
  if (!conn) return;
  std::lock_guard<std::mutex> lock(mutex_);
  idle_.push_back(std::move(conn));
}

}  // namespace creatormesh::ranking
