#include "io/address.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/status.h"

namespace nvmf_ublk::io {

uint16_t SocketAddress::port() const {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
  if (family() == AF_INET6)
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
  return 0;
}

std::string SocketAddress::ToString() const {
  char host[NI_MAXHOST] = "?";
  char serv[NI_MAXSERV] = "?";
  getnameinfo(get(), len, host, sizeof(host), serv, sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV);
  if (family() == AF_INET6) return absl::StrCat("[", host, "]:", serv);
  return absl::StrCat(host, ":", serv);
}

absl::StatusOr<SocketAddress> ResolveAddress(std::string_view host, std::string_view port,
                                             bool allow_any_port) {
  const std::string h(host), p(port);
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), value);
  if (p.empty() || ec != std::errc() || ptr != p.data() + p.size() || value > 65535 ||
      (value == 0 && !allow_any_port)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid port '", p, "' (need 1..65535)"));
  }
  if (h.empty()) return absl::InvalidArgumentError("empty address");
  addrinfo hints;
  std::memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | AI_NUMERICHOST;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(h.c_str(), p.c_str(), &hints, &res);
  if (rc == EAI_NONAME) {
    hints.ai_flags = AI_NUMERICSERV;  // not a literal: resolve the name
    rc = getaddrinfo(h.c_str(), p.c_str(), &hints, &res);
  }
  if (rc != 0) {
    if (rc == EAI_SYSTEM) return ErrnoToStatus(errno, absl::StrCat("resolve '", h, "'"));
    return absl::NotFoundError(absl::StrCat("cannot resolve '", h, "': ", gai_strerror(rc)));
  }
  SocketAddress out;
  std::memcpy(&out.storage, res->ai_addr, res->ai_addrlen);
  out.len = res->ai_addrlen;
  freeaddrinfo(res);
  return out;
}

absl::StatusOr<SocketAddress> LocalAddress(int fd) {
  SocketAddress out;
  out.len = sizeof(out.storage);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&out.storage), &out.len) != 0) {
    return ErrnoToStatus(errno, "getsockname");
  }
  return out;
}

}  // namespace nvmf_ublk::io
