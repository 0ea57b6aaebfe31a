#include "io/ktls.h"

#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/endian.h"
#include "base/status.h"
#include "base/unique_fd.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

namespace nvmf_ublk::io {
namespace {

template <typename Info>
absl::Status SetKeys(int fd, int dir, const auth::TlsTrafficKeys& k, uint16_t cipher) {
  Info info;
  std::memset(&info, 0, sizeof(info));
  info.info.version = TLS_1_3_VERSION;
  info.info.cipher_type = cipher;
  if (k.key.size() != sizeof(info.key) || k.iv.size() != 12) {
    return absl::InternalError("TLS key sizes do not fit the kernel's");
  }
  std::memcpy(info.key, k.key.data(), sizeof(info.key));
  std::memcpy(info.salt, k.iv.data(), 4);    // the IV's first 4 bytes
  std::memcpy(info.iv, k.iv.data() + 4, 8);  // ... the other 8
  for (int i = 0; i < 8; ++i) info.rec_seq[i] = static_cast<uint8_t>(k.seq >> (56 - 8 * i));
  const int rc = setsockopt(fd, SOL_TLS, dir, &info, sizeof(info));
  std::memset(&info, 0, sizeof(info));
  if (rc != 0) {
    return ErrnoToStatus(-errno, dir == TLS_TX ? "kernel TLS: TLS_TX" : "kernel TLS: TLS_RX");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status InstallKernelTls(int fd, const auth::TlsHandshake& hs) {
  if (setsockopt(fd, SOL_TCP, TCP_ULP, "tls", sizeof("tls")) != 0) {
    const int e = errno;
    if (e == ENOENT || e == ENOPROTOOPT) {
      return absl::FailedPreconditionError(
          "TLS needs the kernel's TLS support (the tls module: modprobe tls), which this kernel "
          "does not have");
    }
    return ErrnoToStatus(-e, "kernel TLS: TCP_ULP");
  }
  if (hs.hash() == auth::HashId::kSha384) {
    RETURN_IF_ERROR(
        SetKeys<tls12_crypto_info_aes_gcm_256>(fd, TLS_TX, hs.tx(), TLS_CIPHER_AES_GCM_256));
    return SetKeys<tls12_crypto_info_aes_gcm_256>(fd, TLS_RX, hs.rx(), TLS_CIPHER_AES_GCM_256);
  }
  RETURN_IF_ERROR(
      SetKeys<tls12_crypto_info_aes_gcm_128>(fd, TLS_TX, hs.tx(), TLS_CIPHER_AES_GCM_128));
  return SetKeys<tls12_crypto_info_aes_gcm_128>(fd, TLS_RX, hs.rx(), TLS_CIPHER_AES_GCM_128);
}

bool KernelTlsAvailable() {
  UniqueFd l(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  UniqueFd c(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!l.valid() || !c.valid()) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (bind(l.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || listen(l.get(), 1) != 0 ||
      getsockname(l.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0 ||
      connect(c.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    return false;
  }
  return setsockopt(c.get(), SOL_TCP, TCP_ULP, "tls", sizeof("tls")) == 0;
}

}  // namespace nvmf_ublk::io
