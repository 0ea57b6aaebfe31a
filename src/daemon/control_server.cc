#include "daemon/control_server.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/status.h"
#include "control/protocol.h"

namespace nvmf_ublk::daemon {

absl::StatusOr<std::unique_ptr<ControlServer>> ControlServer::Start(const std::string& path,
                                                                    Handler handler) {
  std::unique_ptr<ControlServer> s(new ControlServer(path, std::move(handler)));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("socket path too long: ", path));
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  const std::string dir = path.substr(0, path.rfind('/'));
  if (!dir.empty() && ::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoToStatus(errno, absl::StrCat("mkdir ", dir));
  }
  // Someone answering on the socket means another daemon owns it.
  {
    UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (::connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
      return absl::AlreadyExistsError(
          absl::StrCat("another nvmf-ublkd is already listening on ", path));
    }
  }
  ::unlink(path.c_str());
  s->listen_fd_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s->listen_fd_) return ErrnoToStatus(errno, "socket");
  const mode_t old = ::umask(0077);
  const int rc = ::bind(s->listen_fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  ::umask(old);
  if (rc != 0) return ErrnoToStatus(errno, absl::StrCat("bind ", path));
  if (::listen(s->listen_fd_.get(), 16) != 0) return ErrnoToStatus(errno, "listen");
  s->stop_fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  s->accept_thread_ = std::thread([raw = s.get()] { raw->AcceptLoop(); });
  return s;
}

void ControlServer::StopAccepting() {
  if (stopping_.exchange(true)) return;
  const uint64_t one = 1;
  ssize_t unused = ::write(stop_fd_.get(), &one, sizeof(one));
  (void)unused;
  if (accept_thread_.joinable()) accept_thread_.join();
  listen_fd_.reset();
  ::unlink(path_.c_str());
}

ControlServer::~ControlServer() {
  StopAccepting();
  std::list<std::unique_ptr<Client>> clients;
  {
    std::lock_guard<std::mutex> lock(mu_);
    clients.swap(clients_);
  }
  for (auto& c : clients) c->thread.join();
}

void ControlServer::AcceptLoop() {
  while (!stopping_) {
    pollfd fds[2] = {{listen_fd_.get(), POLLIN, 0}, {stop_fd_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      NLOG(ERROR) << "control socket poll: " << strerror(errno);
      return;
    }
    if (fds[1].revents) return;
    const int fd = ::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
        (cred.uid != 0 && cred.uid != ::geteuid())) {
      const std::string reply =
          control::ErrorReply(
              absl::PermissionDeniedError("nvmf-ublkd accepts requests from root only"))
              .dump() +
          "\n";
      ssize_t unused = ::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL);
      (void)unused;
      ::close(fd);
      continue;
    }
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = clients_.begin(); it != clients_.end();) {
      if ((*it)->done) {
        (*it)->thread.join();
        it = clients_.erase(it);
      } else {
        ++it;
      }
    }
    auto client = std::make_unique<Client>();
    Client* raw = client.get();
    client->thread = std::thread([this, fd, raw] {
      Serve(fd);
      raw->done = true;
    });
    clients_.push_back(std::move(client));
  }
}

void ControlServer::Serve(int fd) {
  UniqueFd owned(fd);
  std::string buf;
  while (!stopping_) {
    pollfd fds[2] = {{fd, POLLIN, 0}, {stop_fd_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents) return;
    char chunk[4096];
    const ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
    if (n <= 0) return;
    buf.append(chunk, static_cast<size_t>(n));
    if (buf.size() > (1 << 20)) return;  // nobody sends a megabyte of JSON
    size_t nl;
    while ((nl = buf.find('\n')) != std::string::npos) {
      const std::string line = buf.substr(0, nl);
      buf.erase(0, nl + 1);
      nlohmann::json reply;
      auto req = control::ParseObject(line);
      if (!req.ok()) {
        reply = control::ErrorReply(req.status());
      } else {
        std::lock_guard<std::mutex> lock(handler_mu_);
        reply = handler_(*req);
      }
      const std::string out = reply.dump() + "\n";
      if (::send(fd, out.data(), out.size(), MSG_NOSIGNAL) < 0) return;
    }
  }
}

}  // namespace nvmf_ublk::daemon
