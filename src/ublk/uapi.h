// Our own copy of the ublk user ABI (the kernel's include/uapi/linux/ublk_cmd.h), as far as this
// project uses it.
//
// Why not include <linux/ublk_cmd.h>: Debian 12's linux-libc-dev carries the 6.1 header, which has
// neither the ioctl-encoded UBLK_U_* opcodes nor GET_FEATURES nor any flag after 6.1. The ABI is
// stable, so the layouts here are pinned with static_asserts and the opcode values are checked
// against known numbers in uapi_test.cc. Never include the kernel header next to this one: its
// macros would clash with these names.
//
// Names follow the kernel's spelling (not kConstant style) so that every value can be matched with
// the kernel header and ublk_drv.c by grep. Unlike NVMe wire structs these are host-endian: they
// cross the user/kernel boundary of one machine only.
//
// Kernel versions (ANCHORS.md (c)): base protocol 6.0; USER_RECOVERY(_REISSUE),
// START/END_USER_RECOVERY 6.1; UNPRIVILEGED_DEV, GET_DEV_INFO2 6.2; CMD_IOCTL_ENCODE 6.4;
// USER_COPY, GET_FEATURES 6.5; ZONED 6.6; USER_RECOVERY_FAIL_IO 6.13; ZERO_COPY 6.15;
// AUTO_BUF_REG, UPDATE_SIZE, QUIESCE, PER_IO_DAEMON 6.16.
#ifndef NVMF_UBLK_UBLK_UAPI_H_
#define NVMF_UBLK_UBLK_UAPI_H_

#include <linux/ioctl.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>

namespace nvmf_ublk::ublk::uapi {

// --- Control commands: sqe->cmd of an IORING_OP_URING_CMD on /dev/ublk-control (SQE128 ring) ---
struct ublksrv_ctrl_cmd {
  uint32_t dev_id;    // target device; -1 in ADD_DEV = let the kernel choose
  uint16_t queue_id;  // -1 unless the command is for one queue (GET_QUEUE_AFFINITY uses data[0])
  uint16_t len;       // length of the buffer at addr
  uint64_t addr;      // command-specific in/out buffer
  uint64_t data[1];   // inline argument (START_DEV / END_USER_RECOVERY: the server's pid)
  uint16_t dev_path_len;  // GET_DEV_INFO2 and unprivileged devices: "/dev/ublkcN" length incl. NUL
  uint16_t pad;
  uint32_t reserved;
};
static_assert(sizeof(ublksrv_ctrl_cmd) == 32);
static_assert(offsetof(ublksrv_ctrl_cmd, dev_id) == 0);
static_assert(offsetof(ublksrv_ctrl_cmd, queue_id) == 4);
static_assert(offsetof(ublksrv_ctrl_cmd, len) == 6);
static_assert(offsetof(ublksrv_ctrl_cmd, addr) == 8);
static_assert(offsetof(ublksrv_ctrl_cmd, data) == 16);
static_assert(offsetof(ublksrv_ctrl_cmd, dev_path_len) == 24);
static_assert(offsetof(ublksrv_ctrl_cmd, pad) == 26);
static_assert(offsetof(ublksrv_ctrl_cmd, reserved) == 28);

// ADD_DEV input/output, GET_DEV_INFO(2) output.
struct ublksrv_ctrl_dev_info {
  uint16_t nr_hw_queues;  // the kernel caps it at nr_cpu_ids
  uint16_t queue_depth;   // <= UBLK_MAX_QUEUE_DEPTH
  uint16_t state;         // UBLK_S_DEV_*
  uint16_t pad0;
  uint32_t max_io_buf_bytes;  // the kernel rounds it down to PAGE_SIZE
  uint32_t dev_id;
  int32_t ublksrv_pid;
  uint32_t pad1;
  uint64_t flags;          // UBLK_F_*: requested in ADD_DEV, the kernel returns what it granted
  uint64_t ublksrv_flags;  // opaque to the kernel
  uint32_t owner_uid;      // set by the kernel
  uint32_t owner_gid;
  uint64_t reserved1;
  uint64_t reserved2;
};
static_assert(sizeof(ublksrv_ctrl_dev_info) == 64);
static_assert(offsetof(ublksrv_ctrl_dev_info, nr_hw_queues) == 0);
static_assert(offsetof(ublksrv_ctrl_dev_info, queue_depth) == 2);
static_assert(offsetof(ublksrv_ctrl_dev_info, state) == 4);
static_assert(offsetof(ublksrv_ctrl_dev_info, max_io_buf_bytes) == 8);
static_assert(offsetof(ublksrv_ctrl_dev_info, dev_id) == 12);
static_assert(offsetof(ublksrv_ctrl_dev_info, ublksrv_pid) == 16);
static_assert(offsetof(ublksrv_ctrl_dev_info, flags) == 24);
static_assert(offsetof(ublksrv_ctrl_dev_info, ublksrv_flags) == 32);
static_assert(offsetof(ublksrv_ctrl_dev_info, owner_uid) == 40);
static_assert(offsetof(ublksrv_ctrl_dev_info, owner_gid) == 44);
static_assert(offsetof(ublksrv_ctrl_dev_info, reserved1) == 48);
static_assert(offsetof(ublksrv_ctrl_dev_info, reserved2) == 56);

// --- Per-I/O command: sqe->cmd of an IORING_OP_URING_CMD on /dev/ublkcN (fits a 64-byte SQE) ----
struct ublksrv_io_cmd {
  uint16_t q_id;
  uint16_t tag;
  int32_t result;  // COMMIT_AND_FETCH_REQ: bytes done or -errno
  uint64_t addr;   // FETCH / COMMIT: the tag's buffer (copy mode); zone-append LBA with USER_COPY
};
static_assert(sizeof(ublksrv_io_cmd) == 16);
static_assert(offsetof(ublksrv_io_cmd, q_id) == 0);
static_assert(offsetof(ublksrv_io_cmd, tag) == 2);
static_assert(offsetof(ublksrv_io_cmd, result) == 4);
static_assert(offsetof(ublksrv_io_cmd, addr) == 8);

// One request, written by the kernel into the queue's mmapped descriptor array at index `tag`
// before it completes that tag's FETCH/COMMIT_AND_FETCH command.
struct ublksrv_io_desc {
  uint32_t op_flags;      // op in bits 0-7 (UBLK_IO_OP_*), flags in bits 8-31 (UBLK_IO_F_*)
  uint32_t nr_sectors;    // 512-byte sectors (nr_zones for REPORT_ZONES)
  uint64_t start_sector;  // 512-byte sectors, whatever the logical block size
  uint64_t addr;          // the buffer address given in FETCH/COMMIT
};
static_assert(sizeof(ublksrv_io_desc) == 24);
static_assert(offsetof(ublksrv_io_desc, op_flags) == 0);
static_assert(offsetof(ublksrv_io_desc, nr_sectors) == 4);
static_assert(offsetof(ublksrv_io_desc, start_sector) == 8);
static_assert(offsetof(ublksrv_io_desc, addr) == 16);

inline constexpr uint8_t ublksrv_get_op(const ublksrv_io_desc& d) { return d.op_flags & 0xff; }
// The UBLK_IO_F_* flags exactly as defined (they include bits 0-7 as zero, i.e. not shifted down).
inline constexpr uint32_t ublksrv_get_io_flags(const ublksrv_io_desc& d) {
  return d.op_flags & ~uint32_t{0xff};
}

// --- Parameters (SET_PARAMS / GET_PARAMS) ----------------------------------------------------
inline constexpr uint32_t UBLK_ATTR_READ_ONLY = 1u << 0;
inline constexpr uint32_t UBLK_ATTR_ROTATIONAL = 1u << 1;
inline constexpr uint32_t UBLK_ATTR_VOLATILE_CACHE = 1u << 2;
inline constexpr uint32_t UBLK_ATTR_FUA = 1u << 3;  // honoured only with VOLATILE_CACHE

struct ublk_param_basic {
  uint32_t attrs;             // UBLK_ATTR_*
  uint8_t logical_bs_shift;   // 9..PAGE_SHIFT
  uint8_t physical_bs_shift;  // >= logical_bs_shift
  uint8_t io_opt_shift;
  uint8_t io_min_shift;
  uint32_t max_sectors;  // <= max_io_buf_bytes >> 9
  uint32_t chunk_sectors;
  uint64_t dev_sectors;  // capacity in 512-byte sectors
  uint64_t virt_boundary_mask;
};
static_assert(sizeof(ublk_param_basic) == 32);
static_assert(offsetof(ublk_param_basic, attrs) == 0);
static_assert(offsetof(ublk_param_basic, logical_bs_shift) == 4);
static_assert(offsetof(ublk_param_basic, physical_bs_shift) == 5);
static_assert(offsetof(ublk_param_basic, io_opt_shift) == 6);
static_assert(offsetof(ublk_param_basic, io_min_shift) == 7);
static_assert(offsetof(ublk_param_basic, max_sectors) == 8);
static_assert(offsetof(ublk_param_basic, chunk_sectors) == 12);
static_assert(offsetof(ublk_param_basic, dev_sectors) == 16);
static_assert(offsetof(ublk_param_basic, virt_boundary_mask) == 24);

struct ublk_param_discard {
  uint32_t discard_alignment;
  uint32_t discard_granularity;  // must be non-zero whenever this part is present
  uint32_t max_discard_sectors;
  uint32_t max_write_zeroes_sectors;
  uint16_t max_discard_segments;  // the driver accepts only 1 (with max_discard_sectors != 0)
  uint16_t reserved0;
};
static_assert(sizeof(ublk_param_discard) == 20);
static_assert(offsetof(ublk_param_discard, discard_alignment) == 0);
static_assert(offsetof(ublk_param_discard, discard_granularity) == 4);
static_assert(offsetof(ublk_param_discard, max_discard_sectors) == 8);
static_assert(offsetof(ublk_param_discard, max_write_zeroes_sectors) == 12);
static_assert(offsetof(ublk_param_discard, max_discard_segments) == 16);

// Read-only (GET_PARAMS); disk numbers are valid once the device is started.
struct ublk_param_devt {
  uint32_t char_major;
  uint32_t char_minor;
  uint32_t disk_major;
  uint32_t disk_minor;
};
static_assert(sizeof(ublk_param_devt) == 16);
static_assert(offsetof(ublk_param_devt, disk_major) == 8);

struct ublk_param_zoned {
  uint32_t max_open_zones;
  uint32_t max_active_zones;
  uint32_t max_zone_append_sectors;
  uint8_t reserved[20];
};
static_assert(sizeof(ublk_param_zoned) == 32);

struct ublk_param_dma_align {  // 6.14+
  uint32_t alignment;
  uint8_t pad[4];
};
static_assert(sizeof(ublk_param_dma_align) == 8);

struct ublk_param_segment {  // 6.14+
  uint64_t seg_boundary_mask;
  uint32_t max_segment_size;
  uint16_t max_segments;
  uint8_t pad[2];
};
static_assert(sizeof(ublk_param_segment) == 16);

inline constexpr uint32_t UBLK_PARAM_TYPE_BASIC = 1u << 0;
inline constexpr uint32_t UBLK_PARAM_TYPE_DISCARD = 1u << 1;
inline constexpr uint32_t UBLK_PARAM_TYPE_DEVT = 1u << 2;
inline constexpr uint32_t UBLK_PARAM_TYPE_ZONED = 1u << 3;
inline constexpr uint32_t UBLK_PARAM_TYPE_DMA_ALIGN = 1u << 4;
inline constexpr uint32_t UBLK_PARAM_TYPE_SEGMENT = 1u << 5;

// `len` is the length the caller knows; a kernel with a shorter struct copies only what it knows
// (SET_PARAMS) or returns what it has (GET_PARAMS). We stop at the segment part (6.14), so older
// kernels see trailing types they ignore, and newer kernels see a valid prefix.
struct ublk_params {
  uint32_t len;
  uint32_t types;  // UBLK_PARAM_TYPE_*
  ublk_param_basic basic;
  ublk_param_discard discard;
  ublk_param_devt devt;
  ublk_param_zoned zoned;
  ublk_param_dma_align dma;
  ublk_param_segment seg;
};
static_assert(offsetof(ublk_params, basic) == 8);
static_assert(offsetof(ublk_params, discard) == 40);
static_assert(offsetof(ublk_params, devt) == 60);
static_assert(offsetof(ublk_params, zoned) == 76);
static_assert(offsetof(ublk_params, dma) == 108);
static_assert(offsetof(ublk_params, seg) == 120);
static_assert(sizeof(ublk_params) == 136);
// What 6.1..6.13 kernels define (basic, discard, devt, zoned): SET_PARAMS with len up to here is
// understood by every kernel we support.
inline constexpr uint32_t kParamsLenThroughZoned = offsetof(ublk_params, dma);
static_assert(kParamsLenThroughZoned == 108);

// --- Opcodes ------------------------------------------------------------------------------------
// Legacy control opcodes (plain numbers; accepted while CONFIG_BLKDEV_UBLK_LEGACY_OPCODES=y).
inline constexpr uint32_t UBLK_CMD_GET_QUEUE_AFFINITY = 0x01;
inline constexpr uint32_t UBLK_CMD_GET_DEV_INFO = 0x02;
inline constexpr uint32_t UBLK_CMD_ADD_DEV = 0x04;
inline constexpr uint32_t UBLK_CMD_DEL_DEV = 0x05;
inline constexpr uint32_t UBLK_CMD_START_DEV = 0x06;
inline constexpr uint32_t UBLK_CMD_STOP_DEV = 0x07;
inline constexpr uint32_t UBLK_CMD_SET_PARAMS = 0x08;
inline constexpr uint32_t UBLK_CMD_GET_PARAMS = 0x09;
inline constexpr uint32_t UBLK_CMD_START_USER_RECOVERY = 0x10;
inline constexpr uint32_t UBLK_CMD_END_USER_RECOVERY = 0x11;
inline constexpr uint32_t UBLK_CMD_GET_DEV_INFO2 = 0x12;
// Numbers that exist only ioctl-encoded.
inline constexpr uint32_t UBLK_CMD_GET_FEATURES_NR = 0x13;
inline constexpr uint32_t UBLK_CMD_DEL_DEV_ASYNC_NR = 0x14;
inline constexpr uint32_t UBLK_CMD_UPDATE_SIZE_NR = 0x15;
inline constexpr uint32_t UBLK_CMD_QUIESCE_DEV_NR = 0x16;

// Legacy I/O opcodes.
inline constexpr uint32_t UBLK_IO_FETCH_REQ = 0x20;
inline constexpr uint32_t UBLK_IO_COMMIT_AND_FETCH_REQ = 0x21;
inline constexpr uint32_t UBLK_IO_NEED_GET_DATA = 0x22;

// ioctl encoding ("ublk: switch to ioctl command encoding", 6.4): the kernel looks at _IOC_NR only,
// after checking _IOC_TYPE is 'u' (or 0 for legacy numbers).
inline constexpr uint32_t IocEncode(uint32_t dir, uint32_t nr, uint32_t size) {
  return (dir << _IOC_DIRSHIFT) | (uint32_t{'u'} << _IOC_TYPESHIFT) | (nr << _IOC_NRSHIFT) |
         (size << _IOC_SIZESHIFT);
}
inline constexpr uint32_t CtrlIor(uint32_t nr) {
  return IocEncode(_IOC_READ, nr, sizeof(ublksrv_ctrl_cmd));
}
inline constexpr uint32_t CtrlIowr(uint32_t nr) {
  return IocEncode(_IOC_READ | _IOC_WRITE, nr, sizeof(ublksrv_ctrl_cmd));
}
inline constexpr uint32_t IoIowr(uint32_t nr) {
  return IocEncode(_IOC_READ | _IOC_WRITE, nr, sizeof(ublksrv_io_cmd));
}
// _IOC_NR of an encoded (or legacy) opcode.
inline constexpr uint32_t IocNr(uint32_t op) { return (op >> _IOC_NRSHIFT) & _IOC_NRMASK; }

inline constexpr uint32_t UBLK_U_CMD_GET_QUEUE_AFFINITY = CtrlIor(UBLK_CMD_GET_QUEUE_AFFINITY);
inline constexpr uint32_t UBLK_U_CMD_GET_DEV_INFO = CtrlIor(UBLK_CMD_GET_DEV_INFO);
inline constexpr uint32_t UBLK_U_CMD_ADD_DEV = CtrlIowr(UBLK_CMD_ADD_DEV);
inline constexpr uint32_t UBLK_U_CMD_DEL_DEV = CtrlIowr(UBLK_CMD_DEL_DEV);
inline constexpr uint32_t UBLK_U_CMD_START_DEV = CtrlIowr(UBLK_CMD_START_DEV);
inline constexpr uint32_t UBLK_U_CMD_STOP_DEV = CtrlIowr(UBLK_CMD_STOP_DEV);
inline constexpr uint32_t UBLK_U_CMD_SET_PARAMS = CtrlIowr(UBLK_CMD_SET_PARAMS);
inline constexpr uint32_t UBLK_U_CMD_GET_PARAMS = CtrlIor(UBLK_CMD_GET_PARAMS);
inline constexpr uint32_t UBLK_U_CMD_START_USER_RECOVERY = CtrlIowr(UBLK_CMD_START_USER_RECOVERY);
inline constexpr uint32_t UBLK_U_CMD_END_USER_RECOVERY = CtrlIowr(UBLK_CMD_END_USER_RECOVERY);
inline constexpr uint32_t UBLK_U_CMD_GET_DEV_INFO2 = CtrlIor(UBLK_CMD_GET_DEV_INFO2);
inline constexpr uint32_t UBLK_U_CMD_GET_FEATURES = CtrlIor(UBLK_CMD_GET_FEATURES_NR);
inline constexpr uint32_t UBLK_U_CMD_DEL_DEV_ASYNC = CtrlIor(UBLK_CMD_DEL_DEV_ASYNC_NR);
inline constexpr uint32_t UBLK_U_CMD_UPDATE_SIZE = CtrlIowr(UBLK_CMD_UPDATE_SIZE_NR);
inline constexpr uint32_t UBLK_U_CMD_QUIESCE_DEV = CtrlIowr(UBLK_CMD_QUIESCE_DEV_NR);

inline constexpr uint32_t UBLK_U_IO_FETCH_REQ = IoIowr(UBLK_IO_FETCH_REQ);
inline constexpr uint32_t UBLK_U_IO_COMMIT_AND_FETCH_REQ = IoIowr(UBLK_IO_COMMIT_AND_FETCH_REQ);
inline constexpr uint32_t UBLK_U_IO_NEED_GET_DATA = IoIowr(UBLK_IO_NEED_GET_DATA);
inline constexpr uint32_t UBLK_U_IO_REGISTER_IO_BUF = IoIowr(0x23);
inline constexpr uint32_t UBLK_U_IO_UNREGISTER_IO_BUF = IoIowr(0x24);

// GET_FEATURES: header.len must be exactly this.
inline constexpr uint16_t UBLK_FEATURES_LEN = 8;

// --- Feature flags (ublksrv_ctrl_dev_info.flags, GET_FEATURES) --------------------------------
inline constexpr uint64_t UBLK_F_SUPPORT_ZERO_COPY = 1ull << 0;
inline constexpr uint64_t UBLK_F_URING_CMD_COMP_IN_TASK = 1ull << 1;
inline constexpr uint64_t UBLK_F_NEED_GET_DATA = 1ull << 2;
inline constexpr uint64_t UBLK_F_USER_RECOVERY = 1ull << 3;
inline constexpr uint64_t UBLK_F_USER_RECOVERY_REISSUE = 1ull << 4;
inline constexpr uint64_t UBLK_F_UNPRIVILEGED_DEV = 1ull << 5;
inline constexpr uint64_t UBLK_F_CMD_IOCTL_ENCODE = 1ull << 6;
inline constexpr uint64_t UBLK_F_USER_COPY = 1ull << 7;
inline constexpr uint64_t UBLK_F_ZONED = 1ull << 8;
inline constexpr uint64_t UBLK_F_USER_RECOVERY_FAIL_IO = 1ull << 9;
inline constexpr uint64_t UBLK_F_UPDATE_SIZE = 1ull << 10;
inline constexpr uint64_t UBLK_F_AUTO_BUF_REG = 1ull << 11;
inline constexpr uint64_t UBLK_F_QUIESCE = 1ull << 12;
inline constexpr uint64_t UBLK_F_PER_IO_DAEMON = 1ull << 13;
inline constexpr uint64_t UBLK_F_BUF_REG_OFF_DAEMON = 1ull << 14;

// What a 6.1 kernel supports (it has no GET_FEATURES): UBLK_F_ALL of that release.
inline constexpr uint64_t kFeaturesLinux61 = UBLK_F_SUPPORT_ZERO_COPY |
                                             UBLK_F_URING_CMD_COMP_IN_TASK | UBLK_F_NEED_GET_DATA |
                                             UBLK_F_USER_RECOVERY | UBLK_F_USER_RECOVERY_REISSUE;

// --- Device states (ublksrv_ctrl_dev_info.state) -----------------------------------------------
inline constexpr uint16_t UBLK_S_DEV_DEAD = 0;
inline constexpr uint16_t UBLK_S_DEV_LIVE = 1;
inline constexpr uint16_t UBLK_S_DEV_QUIESCED = 2;
inline constexpr uint16_t UBLK_S_DEV_FAIL_IO = 3;

// --- I/O operations and flags (ublksrv_io_desc.op_flags) ---------------------------------------
inline constexpr uint8_t UBLK_IO_OP_READ = 0;
inline constexpr uint8_t UBLK_IO_OP_WRITE = 1;
inline constexpr uint8_t UBLK_IO_OP_FLUSH = 2;
inline constexpr uint8_t UBLK_IO_OP_DISCARD = 3;
inline constexpr uint8_t UBLK_IO_OP_WRITE_SAME = 4;
inline constexpr uint8_t UBLK_IO_OP_WRITE_ZEROES = 5;
inline constexpr uint8_t UBLK_IO_OP_ZONE_OPEN = 10;
inline constexpr uint8_t UBLK_IO_OP_ZONE_CLOSE = 11;
inline constexpr uint8_t UBLK_IO_OP_ZONE_FINISH = 12;
inline constexpr uint8_t UBLK_IO_OP_ZONE_APPEND = 13;
inline constexpr uint8_t UBLK_IO_OP_ZONE_RESET_ALL = 14;
inline constexpr uint8_t UBLK_IO_OP_ZONE_RESET = 15;
inline constexpr uint8_t UBLK_IO_OP_REPORT_ZONES = 18;

inline constexpr uint32_t UBLK_IO_F_FAILFAST_DEV = 1u << 8;
inline constexpr uint32_t UBLK_IO_F_FAILFAST_TRANSPORT = 1u << 9;
inline constexpr uint32_t UBLK_IO_F_FAILFAST_DRIVER = 1u << 10;
inline constexpr uint32_t UBLK_IO_F_META = 1u << 11;
inline constexpr uint32_t UBLK_IO_F_FUA = 1u << 13;
inline constexpr uint32_t UBLK_IO_F_NOUNMAP = 1u << 15;
inline constexpr uint32_t UBLK_IO_F_SWAP = 1u << 16;
inline constexpr uint32_t UBLK_IO_F_NEED_REG_BUF = 1u << 17;

// --- CQE results of FETCH / COMMIT_AND_FETCH -----------------------------------------------------
inline constexpr int32_t UBLK_IO_RES_OK = 0;             // a request is in the descriptor
inline constexpr int32_t UBLK_IO_RES_NEED_GET_DATA = 1;  // only with UBLK_F_NEED_GET_DATA
inline constexpr int32_t UBLK_IO_RES_ABORT = -ENODEV;    // device stopping: do not fetch again

// --- Limits and offsets on /dev/ublkcN ----------------------------------------------------------
// mmap offset of queue q's descriptor array: UBLKSRV_CMD_BUF_OFFSET + q * UblkMaxCmdBufSize().
inline constexpr uint64_t UBLKSRV_CMD_BUF_OFFSET = 0;
// pread/pwrite base offset for UBLK_F_USER_COPY (not used by this project's copy mode).
inline constexpr uint64_t UBLKSRV_IO_BUF_OFFSET = 0x80000000ull;
inline constexpr uint32_t UBLK_MAX_QUEUE_DEPTH = 4096;
inline constexpr uint32_t UBLK_IO_BUF_OFF = 0;
inline constexpr uint32_t UBLK_IO_BUF_BITS = 25;  // one I/O buffer is at most 32 MiB
inline constexpr uint64_t UBLK_IO_BUF_BITS_MASK = (1ull << UBLK_IO_BUF_BITS) - 1;
inline constexpr uint32_t UBLK_TAG_OFF = UBLK_IO_BUF_BITS;
inline constexpr uint32_t UBLK_TAG_BITS = 16;
inline constexpr uint64_t UBLK_TAG_BITS_MASK = (1ull << UBLK_TAG_BITS) - 1;
inline constexpr uint32_t UBLK_QID_OFF = UBLK_TAG_OFF + UBLK_TAG_BITS;
inline constexpr uint32_t UBLK_QID_BITS = 12;
inline constexpr uint64_t UBLK_QID_BITS_MASK = (1ull << UBLK_QID_BITS) - 1;
inline constexpr uint32_t UBLK_MAX_NR_QUEUES = 1u << UBLK_QID_BITS;
inline constexpr uint32_t UBLKSRV_IO_BUF_TOTAL_BITS = UBLK_QID_OFF + UBLK_QID_BITS;
inline constexpr uint64_t UBLKSRV_IO_BUF_TOTAL_SIZE = 1ull << UBLKSRV_IO_BUF_TOTAL_BITS;
inline constexpr uint32_t kMaxIoBufBytes = 1u << UBLK_IO_BUF_BITS;

// USER_COPY file offset of (queue, tag, byte offset in the request).
inline constexpr uint64_t UserCopyOffset(uint16_t q_id, uint16_t tag, uint32_t byte_offset) {
  return UBLKSRV_IO_BUF_OFFSET + (((uint64_t{q_id} & UBLK_QID_BITS_MASK) << UBLK_QID_OFF) |
                                  ((uint64_t{tag} & UBLK_TAG_BITS_MASK) << UBLK_TAG_OFF) |
                                  (byte_offset & UBLK_IO_BUF_BITS_MASK));
}

// Bytes of one queue's descriptor array as the driver sizes it: depth descriptors, page-rounded.
inline constexpr uint64_t UblkQueueCmdBufSize(uint32_t depth, uint64_t page_size) {
  return (uint64_t{depth} * sizeof(ublksrv_io_desc) + page_size - 1) / page_size * page_size;
}
// Stride between queues in the mmap offset space: the array size at the maximum depth.
inline constexpr uint64_t UblkMaxCmdBufSize(uint64_t page_size) {
  return UblkQueueCmdBufSize(UBLK_MAX_QUEUE_DEPTH, page_size);
}

}  // namespace nvmf_ublk::ublk::uapi

#endif  // NVMF_UBLK_UBLK_UAPI_H_
