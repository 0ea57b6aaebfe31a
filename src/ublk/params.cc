#include "ublk/params.h"

#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace nvmf_ublk::ublk {
namespace {

absl::Status Invalid(const std::string& field, uint64_t value, const std::string& why) {
  return absl::InvalidArgumentError(
      absl::StrCat("ublk device parameter ", field, " = ", value, ": ", why));
}

uint8_t Log2(uint32_t v) { return static_cast<uint8_t>(std::countr_zero(v)); }

uint32_t ClampSectors(uint64_t bytes) {
  return static_cast<uint32_t>(std::min<uint64_t>(bytes >> 9, UINT32_MAX));
}

}  // namespace

absl::StatusOr<uapi::ublk_params> BuildParams(const DeviceParams& p, uint32_t max_io_buf_bytes) {
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  const uint32_t lbs = p.logical_block_size;
  if (!std::has_single_bit(lbs) || lbs < 512 || lbs > page) {
    return Invalid("logical_block_size", lbs, "must be a power of two from 512 to the page size");
  }
  const uint32_t pbs = p.physical_block_size ? p.physical_block_size : lbs;
  if (!std::has_single_bit(pbs) || pbs < lbs) {
    return Invalid("physical_block_size", pbs, "must be a power of two >= logical_block_size");
  }
  const uint32_t io_min = p.io_min_bytes ? p.io_min_bytes : pbs;
  const uint32_t io_opt = p.io_opt_bytes ? p.io_opt_bytes : pbs;
  if (!std::has_single_bit(io_min)) return Invalid("io_min_bytes", io_min, "not a power of two");
  if (!std::has_single_bit(io_opt)) return Invalid("io_opt_bytes", io_opt, "not a power of two");
  if (p.size_bytes == 0 || p.size_bytes % lbs != 0) {
    return Invalid("size_bytes", p.size_bytes, "must be a non-zero multiple of the block size");
  }
  if (max_io_buf_bytes < lbs) {
    return Invalid("max_io_bytes", max_io_buf_bytes, "smaller than one logical block");
  }
  const uint32_t max_transfer = p.max_transfer_bytes ? p.max_transfer_bytes : max_io_buf_bytes;
  if (max_transfer > max_io_buf_bytes) {
    return Invalid("max_transfer_bytes", max_transfer,
                   absl::StrCat("exceeds the tag buffer size ", max_io_buf_bytes));
  }
  if (max_transfer < lbs || max_transfer % lbs != 0) {
    return Invalid("max_transfer_bytes", max_transfer, "must be a multiple of the block size");
  }

  uapi::ublk_params out;
  std::memset(&out, 0, sizeof(out));
  out.len = sizeof(out);
  out.types = uapi::UBLK_PARAM_TYPE_BASIC;
  uapi::ublk_param_basic& b = out.basic;
  if (p.read_only) b.attrs |= uapi::UBLK_ATTR_READ_ONLY;
  if (p.rotational) b.attrs |= uapi::UBLK_ATTR_ROTATIONAL;
  if (p.volatile_cache) b.attrs |= uapi::UBLK_ATTR_VOLATILE_CACHE;
  // Without a volatile cache every write is durable anyway and the block layer ignores FUA.
  if (p.fua && p.volatile_cache) b.attrs |= uapi::UBLK_ATTR_FUA;
  b.logical_bs_shift = Log2(lbs);
  b.physical_bs_shift = Log2(pbs);
  b.io_min_shift = Log2(io_min);
  b.io_opt_shift = Log2(io_opt);
  b.max_sectors = max_transfer >> 9;
  b.dev_sectors = p.size_bytes >> 9;

  if (p.max_discard_bytes != 0 || p.max_write_zeroes_bytes != 0) {
    const uint32_t gran = p.discard_granularity ? p.discard_granularity : lbs;
    if (gran % lbs != 0) {
      return Invalid("discard_granularity", gran, "must be a multiple of the block size");
    }
    if (p.max_discard_bytes % lbs != 0) {
      return Invalid("max_discard_bytes", p.max_discard_bytes, "not a multiple of the block size");
    }
    if (p.max_write_zeroes_bytes % lbs != 0) {
      return Invalid("max_write_zeroes_bytes", p.max_write_zeroes_bytes,
                     "not a multiple of the block size");
    }
    out.types |= uapi::UBLK_PARAM_TYPE_DISCARD;
    uapi::ublk_param_discard& d = out.discard;
    d.discard_alignment = p.discard_alignment;
    d.discard_granularity = gran;  // the driver rejects 0 even for write-zeroes only
    d.max_discard_sectors = ClampSectors(p.max_discard_bytes);
    d.max_write_zeroes_sectors = ClampSectors(p.max_write_zeroes_bytes);
    d.max_discard_segments = p.max_discard_bytes != 0 ? 1 : 0;
  }
  return out;
}

DeviceParams ParamsFromUblk(const uapi::ublk_params& u) {
  DeviceParams p;
  const uapi::ublk_param_basic& b = u.basic;
  p.size_bytes = b.dev_sectors << 9;
  p.logical_block_size = 1u << b.logical_bs_shift;
  p.physical_block_size = 1u << b.physical_bs_shift;
  p.io_min_bytes = 1u << b.io_min_shift;
  p.io_opt_bytes = 1u << b.io_opt_shift;
  p.max_transfer_bytes = b.max_sectors << 9;
  p.read_only = b.attrs & uapi::UBLK_ATTR_READ_ONLY;
  p.rotational = b.attrs & uapi::UBLK_ATTR_ROTATIONAL;
  p.volatile_cache = b.attrs & uapi::UBLK_ATTR_VOLATILE_CACHE;
  p.fua = b.attrs & uapi::UBLK_ATTR_FUA;
  if (u.types & uapi::UBLK_PARAM_TYPE_DISCARD) {
    p.max_discard_bytes = uint64_t{u.discard.max_discard_sectors} << 9;
    p.discard_granularity = u.discard.discard_granularity;
    p.discard_alignment = u.discard.discard_alignment;
    p.max_write_zeroes_bytes = uint64_t{u.discard.max_write_zeroes_sectors} << 9;
  }
  return p;
}

std::string ToString(const DeviceParams& p) {
  std::string s = absl::StrCat(p.size_bytes, " bytes, lbs ", p.logical_block_size, ", pbs ",
                               p.physical_block_size ? p.physical_block_size : p.logical_block_size,
                               ", max transfer ", p.max_transfer_bytes);
  if (p.volatile_cache) absl::StrAppend(&s, ", volatile cache");
  if (p.fua) absl::StrAppend(&s, ", fua");
  if (p.read_only) absl::StrAppend(&s, ", read-only");
  if (p.max_discard_bytes) absl::StrAppend(&s, ", discard max ", p.max_discard_bytes);
  if (p.max_write_zeroes_bytes)
    absl::StrAppend(&s, ", write zeroes max ", p.max_write_zeroes_bytes);
  return s;
}

}  // namespace nvmf_ublk::ublk
