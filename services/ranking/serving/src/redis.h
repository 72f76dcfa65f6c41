// A Redis connection (hiredis) from a redis:// URL, as the Python services use it (CREATORMESH_REDIS_URL):
// redis://[[user]:password@]host[:port][/db]. One connection is not thread-safe; RedisPool hands one to each
// caller at a time. A failed command drops the connection, the next call reconnects.
#pragma once

#include <hiredis/hiredis.h>

#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace creatormesh::ranking {

struct RedisError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

class Redis {
 public:
  explicit Redis(std::string url, double timeout_seconds = 5.0);
  ~Redis();
  Redis(const Redis&) = delete;
  Redis& operator=(const Redis&) = delete;

  // Runs one command (arguments binary-safe); throws RedisError on a connection error or an error reply
  // (the message is Redis's, e.g. "NOSCRIPT ...").
  Reply command(const std::vector<std::string>& args);
  // Pipelined: sends every command, then reads every reply (in order). Error replies are returned, not thrown.
  std::vector<Reply> pipeline(const std::vector<std::vector<std::string>>& commands);
  // Sets the socket timeout of blocking reads (XREAD BLOCK needs more than its block time).
  void set_timeout(double seconds);

 private:
  void connect();
  std::string url_;
  double timeout_;
  redisContext* ctx_ = nullptr;
};

// Connections for concurrent callers: take() gives an idle one (or a new one), it returns on scope exit.
class RedisPool {
 public:
  explicit RedisPool(std::string url) : url_(std::move(url)) {}
  class Lease {
   public:
    Lease(RedisPool& pool, std::unique_ptr<Redis> conn) : pool_(pool), conn_(std::move(conn)) {}
    ~Lease() { pool_.give_back(std::move(conn_)); }
    Redis& operator*() { return *conn_; }
    Redis* operator->() { return conn_.get(); }

   private:
    RedisPool& pool_;
    std::unique_ptr<Redis> conn_;
  };
  Lease take();
  const std::string& url() const { return url_; }

 private:
  void give_back(std::unique_ptr<Redis> conn);
  std::string url_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<Redis>> idle_;
};

}  // namespace creatormesh::ranking
