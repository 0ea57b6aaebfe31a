// What a block device looks like (size, block sizes, limits, cache) and its translation into ublk
// parameters. The caller fills DeviceParams from NVMe Identify (DESIGN.md §4): logical block size
// from the LBA format, capacity, max transfer from MDTS, discard / write-zeroes limits from ONCS
// and DMRL/DMRSL, volatile cache from VWC; the device appears with exactly these values.
#ifndef NVMF_UBLK_UBLK_PARAMS_H_
#define NVMF_UBLK_UBLK_PARAMS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "ublk/uapi.h"

namespace nvmf_ublk::ublk {

struct DeviceParams {
  uint64_t size_bytes = 0;            // capacity; a multiple of logical_block_size
  uint32_t logical_block_size = 512;  // power of two, 512..4096
  uint32_t physical_block_size = 0;   // power of two >= logical; 0 = logical_block_size
  uint32_t io_min_bytes = 0;          // power of two; 0 = physical_block_size
  uint32_t io_opt_bytes = 0;          // power of two; 0 = physical_block_size
  // Largest read/write in bytes (max_sectors << 9). 0 = the device's max_io_bytes (the tag buffer
  // size). Must not exceed it; a multiple of the logical block size.
  uint32_t max_transfer_bytes = 0;

  bool volatile_cache = false;  // the device has a write-back cache: flushes are sent (NVMe VWC)
  bool fua = false;             // honours FUA writes (dropped without volatile_cache)
  bool rotational = false;
  bool read_only = false;

  // Discard (NVMe Dataset Management deallocate). 0 = no discard. ublk carries one range per
  // request (the driver accepts max_discard_segments == 1 only), so a multi-range DSM is built by
  // the backend from adjacent requests if at all.
  uint64_t max_discard_bytes = 0;    // larger than 2^32 sectors is clamped
  uint32_t discard_granularity = 0;  // 0 = logical_block_size
  uint32_t discard_alignment = 0;
  // Write Zeroes. 0 = not supported (the block layer then writes zero pages itself).
  uint64_t max_write_zeroes_bytes = 0;
};

// Checks `p` and builds SET_PARAMS' argument for a device whose tag buffers are `max_io_buf_bytes`
// (as ADD_DEV returned it). kInvalidArgument names the offending field.
absl::StatusOr<uapi::ublk_params> BuildParams(const DeviceParams& p, uint32_t max_io_buf_bytes);

// The inverse, for GET_PARAMS after a recovery (what the device was created with).
DeviceParams ParamsFromUblk(const uapi::ublk_params& p);

// One line for logs: "1073741824 bytes, lbs 512, pbs 4096, max io 524288, vwc fua, discard ..."
std::string ToString(const DeviceParams& p);

}  // namespace nvmf_ublk::ublk

#endif  // NVMF_UBLK_UBLK_PARAMS_H_
