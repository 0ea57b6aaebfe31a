// Kernel TLS (Documentation/networking/tls.rst): after a TLS 1.3 handshake in userspace
// (auth::TlsHandshake), the socket's records are sealed and opened by the kernel, so NVMe/TCP
// PDUs keep going through io_uring as plain socket I/O with no syscall per record.
#ifndef NVMF_UBLK_IO_KTLS_H_
#define NVMF_UBLK_IO_KTLS_H_

#include "absl/status/status.h"
#include "auth/tls_handshake.h"

namespace nvmf_ublk::io {

// Sets TCP_ULP "tls" and the TLS_TX / TLS_RX AES-GCM keys of `hs` (done) on connected `fd`.
// kFailedPrecondition naming the tls module when the kernel has no TLS.
absl::Status InstallKernelTls(int fd, const auth::TlsHandshake& hs);

// Whether this kernel can do TLS on TCP sockets (probes a loopback socket pair).
bool KernelTlsAvailable();

}  // namespace nvmf_ublk::io

#endif  // NVMF_UBLK_IO_KTLS_H_
