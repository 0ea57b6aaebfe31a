// CRC32C (Castagnoli), the NVMe/TCP header and data digest (§3.6.2.2), computed with ISA-L's
// crc32_iscsi (SSE4.2 + PCLMULQDQ folding; runtime dispatch to a table version on older CPUs).
//
// Streaming: state = kCrc32cInit; state = Crc32cExtend(state, ...)...; digest =
// Crc32cFinish(state). The digest is sent as a little-endian 32-bit value.
#ifndef NVMF_UBLK_TCP_CRC32C_H_
#define NVMF_UBLK_TCP_CRC32C_H_

#include <cstddef>
#include <cstdint>

namespace nvmf_ublk::tcp {

inline constexpr uint32_t kCrc32cInit = 0xFFFFFFFFu;
uint32_t Crc32cExtend(uint32_t state, const void* data, size_t len);
inline uint32_t Crc32cFinish(uint32_t state) { return state ^ 0xFFFFFFFFu; }
inline uint32_t Crc32c(const void* data, size_t len) {
  return Crc32cFinish(Crc32cExtend(kCrc32cInit, data, len));
}

}  // namespace nvmf_ublk::tcp

#endif  // NVMF_UBLK_TCP_CRC32C_H_
