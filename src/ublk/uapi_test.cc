// The ublk ABI pinned to known numbers (values as the 6.12 kernel computes them), so a typo in
// uapi.h cannot go unnoticed on a host without ublk.
#include "ublk/uapi.h"

#include <sys/ioctl.h>

#include "gtest/gtest.h"

namespace nvmf_ublk::ublk::uapi {
namespace {

TEST(UblkUapi, StructSizes) {
  EXPECT_EQ(sizeof(ublksrv_ctrl_cmd), 32u);
  EXPECT_EQ(sizeof(ublksrv_ctrl_dev_info), 64u);
  EXPECT_EQ(sizeof(ublksrv_io_desc), 24u);
  EXPECT_EQ(sizeof(ublksrv_io_cmd), 16u);
  EXPECT_EQ(sizeof(ublk_param_basic), 32u);
  EXPECT_EQ(sizeof(ublk_param_discard), 20u);
  EXPECT_EQ(sizeof(ublk_param_devt), 16u);
  EXPECT_EQ(sizeof(ublk_param_zoned), 32u);
  EXPECT_EQ(kParamsLenThroughZoned, 108u);  // sizeof(struct ublk_params) in 6.1..6.13
}

TEST(UblkUapi, ControlOpcodesMatchTheKernelMacros) {
  // _IOWR('u', nr, struct ublksrv_ctrl_cmd): dir 3, size 32, type 'u' (0x75).
  EXPECT_EQ(UBLK_U_CMD_ADD_DEV, 0xC0207504u);
  EXPECT_EQ(UBLK_U_CMD_ADD_DEV, static_cast<uint32_t>(_IOWR('u', 0x04, ublksrv_ctrl_cmd)));
  EXPECT_EQ(UBLK_U_CMD_DEL_DEV, 0xC0207505u);
  EXPECT_EQ(UBLK_U_CMD_START_DEV, 0xC0207506u);
  EXPECT_EQ(UBLK_U_CMD_STOP_DEV, 0xC0207507u);
  EXPECT_EQ(UBLK_U_CMD_SET_PARAMS, 0xC0207508u);
  EXPECT_EQ(UBLK_U_CMD_START_USER_RECOVERY, 0xC0207510u);
  EXPECT_EQ(UBLK_U_CMD_END_USER_RECOVERY, 0xC0207511u);
  EXPECT_EQ(UBLK_U_CMD_UPDATE_SIZE, 0xC0207515u);
  EXPECT_EQ(UBLK_U_CMD_QUIESCE_DEV, 0xC0207516u);
  // _IOR: dir 2.
  EXPECT_EQ(UBLK_U_CMD_GET_DEV_INFO, 0x80207502u);
  EXPECT_EQ(UBLK_U_CMD_GET_PARAMS, 0x80207509u);
  EXPECT_EQ(UBLK_U_CMD_GET_DEV_INFO2, 0x80207512u);
  EXPECT_EQ(UBLK_U_CMD_GET_FEATURES, 0x80207513u);
  EXPECT_EQ(UBLK_U_CMD_GET_FEATURES, static_cast<uint32_t>(_IOR('u', 0x13, ublksrv_ctrl_cmd)));
  EXPECT_EQ(UBLK_U_CMD_DEL_DEV_ASYNC, 0x80207514u);
  EXPECT_EQ(UBLK_U_CMD_GET_QUEUE_AFFINITY, 0x80207501u);
}

TEST(UblkUapi, IoOpcodes) {
  // _IOWR('u', nr, struct ublksrv_io_cmd): size 16.
  EXPECT_EQ(UBLK_U_IO_FETCH_REQ, 0xC0107520u);
  EXPECT_EQ(UBLK_U_IO_FETCH_REQ, static_cast<uint32_t>(_IOWR('u', 0x20, ublksrv_io_cmd)));
  EXPECT_EQ(UBLK_U_IO_COMMIT_AND_FETCH_REQ, 0xC0107521u);
  EXPECT_EQ(UBLK_U_IO_NEED_GET_DATA, 0xC0107522u);
  EXPECT_EQ(UBLK_U_IO_REGISTER_IO_BUF, 0xC0107523u);
  EXPECT_EQ(IocNr(UBLK_U_IO_COMMIT_AND_FETCH_REQ), UBLK_IO_COMMIT_AND_FETCH_REQ);
  EXPECT_EQ(IocNr(UBLK_U_CMD_ADD_DEV), UBLK_CMD_ADD_DEV);
  EXPECT_EQ(IocNr(UBLK_CMD_ADD_DEV), UBLK_CMD_ADD_DEV);  // legacy numbers are their own _IOC_NR
}

TEST(UblkUapi, FeatureBitsAndFlags) {
  EXPECT_EQ(UBLK_F_USER_RECOVERY, 0x8u);
  EXPECT_EQ(UBLK_F_USER_RECOVERY_REISSUE, 0x10u);
  EXPECT_EQ(UBLK_F_CMD_IOCTL_ENCODE, 0x40u);
  EXPECT_EQ(UBLK_F_USER_COPY, 0x80u);
  EXPECT_EQ(UBLK_F_AUTO_BUF_REG, 0x800u);
  EXPECT_EQ(UBLK_F_QUIESCE, 0x1000u);
  EXPECT_EQ(kFeaturesLinux61, 0x1Fu);
  EXPECT_EQ(UBLK_IO_F_FUA, 0x2000u);
  EXPECT_EQ(UBLK_IO_F_NOUNMAP, 0x8000u);
  EXPECT_EQ(UBLK_ATTR_VOLATILE_CACHE, 4u);
  EXPECT_EQ(UBLK_ATTR_FUA, 8u);
  EXPECT_EQ(UBLK_IO_RES_ABORT, -ENODEV);
}

TEST(UblkUapi, DescriptorAccessors) {
  ublksrv_io_desc d{};
  d.op_flags = UBLK_IO_OP_WRITE | UBLK_IO_F_FUA | UBLK_IO_F_META;
  EXPECT_EQ(ublksrv_get_op(d), UBLK_IO_OP_WRITE);
  EXPECT_EQ(ublksrv_get_io_flags(d), UBLK_IO_F_FUA | UBLK_IO_F_META);
}

TEST(UblkUapi, BufferOffsets) {
  // The per-queue descriptor stride is the array size at depth 4096: 4096 * 24 bytes, page-rounded.
  EXPECT_EQ(UblkMaxCmdBufSize(4096), 98304u);
  EXPECT_EQ(UblkQueueCmdBufSize(128, 4096), 4096u);
  EXPECT_EQ(UblkQueueCmdBufSize(171, 4096), 8192u);  // 171 * 24 = 4104
  EXPECT_EQ(kMaxIoBufBytes, 32u << 20);
  EXPECT_EQ(UBLKSRV_IO_BUF_TOTAL_BITS, 53u);
  EXPECT_EQ(UserCopyOffset(0, 0, 0), UBLKSRV_IO_BUF_OFFSET);
  EXPECT_EQ(UserCopyOffset(1, 2, 3), 0x80000000ull + (1ull << 41) + (2ull << 25) + 3);
}

}  // namespace
}  // namespace nvmf_ublk::ublk::uapi
