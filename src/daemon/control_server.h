// The daemon's control socket: a Unix stream socket, mode 0600 in a 0700 directory, serving
// newline-delimited JSON requests (include/nvmf_ublk/control.h). Peers are checked with
// SO_PEERCRED: only root (or the daemon's own user) may talk to it. One thread per client; the
// handler itself is called with requests serialized.
#ifndef NVMF_UBLK_DAEMON_CONTROL_SERVER_H_
#define NVMF_UBLK_DAEMON_CONTROL_SERVER_H_

#include <atomic>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "base/unique_fd.h"
#include "nlohmann/json.hpp"

namespace nvmf_ublk::daemon {

class ControlServer {
 public:
  using Handler = std::function<nlohmann::json(const nlohmann::json& request)>;

  // Binds `path`. Fails with kAlreadyExists when another daemon answers there; a stale socket
  // file is replaced.
  static absl::StatusOr<std::unique_ptr<ControlServer>> Start(const std::string& path,
                                                              Handler handler);
  // Joins every client thread (a request in progress first finishes).
  ~ControlServer();
  // Closes the socket and stops serving: idle clients are dropped, a request in progress still
  // gets its reply. Returns without waiting for it. Idempotent.
  void StopAccepting();
  const std::string& path() const { return path_; }

 private:
  ControlServer(std::string path, Handler handler)
      : path_(std::move(path)), handler_(std::move(handler)) {}
  void AcceptLoop();
  void Serve(int fd);

  std::string path_;
  Handler handler_;
  UniqueFd listen_fd_;
  UniqueFd stop_fd_;  // eventfd: wakes the accept loop and clients on shutdown
  std::thread accept_thread_;
  std::mutex mu_;  // guards clients_ and serializes handler_ calls
  std::mutex handler_mu_;
  struct Client {
    std::thread thread;
    std::atomic<bool> done{false};
  };
  std::list<std::unique_ptr<Client>> clients_;  // finished ones are joined at the next accept
  std::atomic<bool> stopping_{false};
};

}  // namespace nvmf_ublk::daemon

#endif  // NVMF_UBLK_DAEMON_CONTROL_SERVER_H_
