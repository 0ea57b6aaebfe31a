#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "control/protocol.h"
#include "nvmf_ublk/control.h"

namespace nvmf_ublk {

using nlohmann::json;

absl::StatusOr<ControlClient> ControlClient::Open(std::string_view socket_path_view) {
  const std::string socket_path(socket_path_view);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("socket path too long: ", socket_path));
  }
  std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());
  // Non-blocking: a daemon whose accept backlog is full (hung) makes connect() fail with EAGAIN
  // instead of blocking; retried for a bounded time. Calls poll, so the fd stays non-blocking.
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return ErrnoToStatus(errno, "socket");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int err = errno;
    if ((err == EAGAIN || err == EINTR) && std::chrono::steady_clock::now() < deadline) {
      ::usleep(20'000);
      continue;
    }
    ::close(fd);
    if (err == EAGAIN) {
      return absl::DeadlineExceededError(absl::StrCat(
          "nvmf-ublkd does not accept connections on ", socket_path,
          " (hung? `journalctl -u nvmf-ublkd`; systemd's watchdog restarts a hung daemon)"));
    }
    if (err == ENOENT || err == ECONNREFUSED) {
      return absl::UnavailableError(
          absl::StrCat("nvmf-ublkd is not running (no listener on ", socket_path,
                       "): start it with `systemctl start nvmf-ublkd` or run `nvmf-ublkd`"));
    }
    if (err == EACCES || err == EPERM) {
      return absl::PermissionDeniedError(
          absl::StrCat("permission denied on ", socket_path, ": nvmf-ublk needs root"));
    }
    return ErrnoToStatus(err, absl::StrCat("connect to ", socket_path));
  }
  return ControlClient(fd);
}

ControlClient::ControlClient(ControlClient&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)), timeout_ms_(o.timeout_ms_), buffer_(std::move(o.buffer_)) {}

ControlClient& ControlClient::operator=(ControlClient&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(o.fd_, -1);
    timeout_ms_ = o.timeout_ms_;
    buffer_ = std::move(o.buffer_);
  }
  return *this;
}

ControlClient::~ControlClient() {
  if (fd_ >= 0) ::close(fd_);
}

absl::StatusOr<std::string> ControlClient::Call(std::string_view request_json) {
  if (fd_ < 0) return absl::FailedPreconditionError("control connection is closed");
  const auto start = std::chrono::steady_clock::now();
  auto left_ms = [&]() -> int {
    if (timeout_ms_ <= 0) return -1;
    const auto spent = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::steady_clock::now() - start)
                           .count();
    return static_cast<int>(std::max<int64_t>(0, timeout_ms_ - spent));
  };
  auto timed_out = [&] {
    ::close(fd_);
    fd_ = -1;
    return absl::DeadlineExceededError(absl::StrCat(
        "nvmf-ublkd did not answer within ", timeout_ms_ / 1000.0,
        " s (it may still finish the request: check `nvmf-ublk list`; `--timeout` waits longer; "
        "`journalctl -u nvmf-ublkd` shows what it is doing)"));
  };
  std::string out(request_json);
  out += '\n';
  for (size_t off = 0; off < out.size();) {
    pollfd pw{fd_, POLLOUT, 0};
    const int pr = ::poll(&pw, 1, left_ms());
    if (pr < 0 && errno == EINTR) continue;
    if (pr == 0) return timed_out();
    const ssize_t n = ::send(fd_, out.data() + off, out.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return ErrnoToStatus(errno, "send to nvmf-ublkd");
    }
    off += static_cast<size_t>(n);
  }
  while (true) {
    const size_t nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return line;
    }
    pollfd pr{fd_, POLLIN, 0};
    const int ready = ::poll(&pr, 1, left_ms());
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) return timed_out();
    char chunk[4096];
    const ssize_t n = ::recv(fd_, chunk, sizeof(chunk), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return ErrnoToStatus(errno, "receive from nvmf-ublkd");
    }
    if (n == 0) return absl::UnavailableError("nvmf-ublkd closed the connection");
    buffer_.append(chunk, static_cast<size_t>(n));
  }
}

namespace {

absl::StatusOr<json> Round(ControlClient* c, const json& req) {
  ASSIGN_OR_RETURN(std::string line, c->Call(req.dump()));
  ASSIGN_OR_RETURN(json reply, control::ParseObject(line));
  RETURN_IF_ERROR(control::ReplyStatus(reply));
  return reply;
}

std::vector<DeviceInfo> Devices(const json& reply) {
  std::vector<DeviceInfo> out;
  if (auto it = reply.find("devices"); it != reply.end() && it->is_array()) {
    for (const auto& d : *it) out.push_back(control::DeviceInfoFromJson(d));
  }
  return out;
}

}  // namespace

absl::StatusOr<std::vector<DeviceInfo>> ControlClient::Connect(const ConnectArgs& args,
                                                               bool* already_connected) {
  json req = control::ToJson(args);
  req["cmd"] = "connect";
  ASSIGN_OR_RETURN(json reply, Round(this, req));
  if (already_connected != nullptr) {
    auto it = reply.find("already_connected");
    *already_connected = it != reply.end() && it->is_boolean() && it->get<bool>();
  }
  return Devices(reply);
}

absl::StatusOr<ConnectAllResult> ControlClient::ConnectAll(const ConnectAllArgs& args) {
  json req = control::ToJson(args);
  req["cmd"] = "connect-all";
  ASSIGN_OR_RETURN(json reply, Round(this, req));
  return control::ConnectAllResultFromJson(reply);
}

absl::StatusOr<std::vector<DiscoveryControllerInfo>> ControlClient::ListDiscovery() {
  ASSIGN_OR_RETURN(json reply, Round(this, json{{"cmd", "list"}}));
  std::vector<DiscoveryControllerInfo> out;
  if (auto it = reply.find("discovery"); it != reply.end() && it->is_array()) {
    for (const auto& d : *it) out.push_back(control::DiscoveryControllerInfoFromJson(d));
  }
  return out;
}

absl::StatusOr<std::vector<DeviceInfo>> ControlClient::DisconnectSubsystem(
    std::string_view subnqn) {
  ASSIGN_OR_RETURN(json reply,
                   Round(this, json{{"cmd", "disconnect"}, {"subnqn", std::string(subnqn)}}));
  return Devices(reply);
}

absl::StatusOr<std::vector<DeviceInfo>> ControlClient::DisconnectPath(std::string_view subnqn,
                                                                      std::string_view traddr,
                                                                      std::string_view trsvcid) {
  ASSIGN_OR_RETURN(json reply, Round(this, json{{"cmd", "disconnect"},
                                                {"subnqn", std::string(subnqn)},
                                                {"traddr", std::string(traddr)},
                                                {"trsvcid", std::string(trsvcid)}}));
  return Devices(reply);
}

absl::Status ControlClient::SetIoPolicy(std::string_view device, std::string_view policy) {
  return Round(this, json{{"cmd", "set-iopolicy"},
                          {"device", std::string(device)},
                          {"iopolicy", std::string(policy)}})
      .status();
}

absl::StatusOr<std::vector<DeviceInfo>> ControlClient::ListDevices() {
  ASSIGN_OR_RETURN(json reply, Round(this, json{{"cmd", "list"}}));
  return Devices(reply);
}

absl::StatusOr<std::vector<DeviceInfo>> ControlClient::DisconnectDevice(std::string_view path) {
  ASSIGN_OR_RETURN(json reply,
                   Round(this, json{{"cmd", "disconnect"}, {"device", std::string(path)}}));
  return Devices(reply);
}

absl::StatusOr<std::vector<DeviceInfo>> ControlClient::DisconnectAll(std::string_view owner) {
  json req{{"cmd", "disconnect-all"}};
  if (!owner.empty()) req["owner"] = std::string(owner);
  ASSIGN_OR_RETURN(json reply, Round(this, req));
  return Devices(reply);
}

absl::StatusOr<std::vector<ControllerSummary>> ControlClient::List() {
  ASSIGN_OR_RETURN(json reply, Round(this, json{{"cmd", "list"}}));
  std::vector<ControllerSummary> out;
  if (auto it = reply.find("controllers"); it != reply.end() && it->is_array()) {
    for (const auto& c : *it) out.push_back(control::ControllerSummaryFromJson(c));
  }
  return out;
}

}  // namespace nvmf_ublk
