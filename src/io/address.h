// Socket addresses for NVMe/TCP transport IDs (traddr + trsvcid) and host_traddr.
#ifndef NVMF_UBLK_IO_ADDRESS_H_
#define NVMF_UBLK_IO_ADDRESS_H_

#include <sys/socket.h>

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace nvmf_ublk::io {

struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t len = 0;
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  int family() const { return storage.ss_family; }
  uint16_t port() const;
  // "10.0.0.1:4420" or "[fe80::1%eth0]:4420".
  std::string ToString() const;
};

// Resolves `host` (IPv4/IPv6 literal, or a name: resolved with getaddrinfo, which may block, so
// only call it off the data path) and `port` (decimal, 1..65535; 0 allowed when `allow_any_port`).
absl::StatusOr<SocketAddress> ResolveAddress(std::string_view host, std::string_view port,
                                             bool allow_any_port = false);

// The local address a connected socket uses (for logs and discovery).
absl::StatusOr<SocketAddress> LocalAddress(int fd);

}  // namespace nvmf_ublk::io

#endif  // NVMF_UBLK_IO_ADDRESS_H_
