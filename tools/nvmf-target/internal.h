// Constants shared by the target's connection code (not part of the library API).
#ifndef NVMF_UBLK_TOOLS_NVMF_TARGET_INTERNAL_H_
#define NVMF_UBLK_TOOLS_NVMF_TARGET_INTERNAL_H_

#include <cstdint>

namespace nvmf_ublk::target {

// In-capsule data accepted on the admin queue (and for Connect on any queue), as nvmet.
inline constexpr uint32_t kAdminInCapsuleMax = 8192;
// Outstanding Asynchronous Event Requests (Identify AERL + 1).
inline constexpr uint32_t kMaxAers = 4;

// Generic command status codes (Base 2.0 Figure 102) not in nvme/spec.h.
inline constexpr uint8_t kScDataSglLengthInvalid = 0x0F;
inline constexpr uint8_t kScSglDescriptorTypeInvalid = 0x11;
inline constexpr uint8_t kScSglOffsetInvalid = 0x16;

}  // namespace nvmf_ublk::target

#endif  // NVMF_UBLK_TOOLS_NVMF_TARGET_INTERNAL_H_
