#include "ublk/params.h"

#include "base/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nvmf_ublk::ublk {
namespace {

using ::nvmf_ublk::testing::IsOk;
using ::nvmf_ublk::testing::StatusIs;
using ::testing::HasSubstr;

constexpr uint32_t kBuf = 512 * 1024;

TEST(BuildParams, NvmeLike4kNamespace) {
  DeviceParams p;
  p.size_bytes = (1ull << 30) + 4096 * 3;  // not a power of two: must come through exactly
  p.logical_block_size = 4096;
  p.max_transfer_bytes = 128 * 1024;  // MDTS 5 with 4 KiB pages
  p.volatile_cache = true;
  p.fua = true;
  p.max_discard_bytes = 1ull << 30;
  p.max_write_zeroes_bytes = 256ull << 20;
  ASSERT_OK_AND_ASSIGN(uapi::ublk_params u, BuildParams(p, kBuf));
  EXPECT_EQ(u.len, sizeof(uapi::ublk_params));
  EXPECT_EQ(u.types, uapi::UBLK_PARAM_TYPE_BASIC | uapi::UBLK_PARAM_TYPE_DISCARD);
  EXPECT_EQ(u.basic.logical_bs_shift, 12);
  EXPECT_EQ(u.basic.physical_bs_shift, 12);
  EXPECT_EQ(u.basic.io_min_shift, 12);
  EXPECT_EQ(u.basic.io_opt_shift, 12);
  EXPECT_EQ(u.basic.max_sectors, 256u);
  EXPECT_EQ(u.basic.dev_sectors, p.size_bytes / 512);
  EXPECT_EQ(u.basic.attrs, uapi::UBLK_ATTR_VOLATILE_CACHE | uapi::UBLK_ATTR_FUA);
  EXPECT_EQ(u.discard.discard_granularity, 4096u);
  EXPECT_EQ(u.discard.max_discard_sectors, (1u << 30) / 512);
  EXPECT_EQ(u.discard.max_write_zeroes_sectors, (256u << 20) / 512);
  EXPECT_EQ(u.discard.max_discard_segments, 1);  // the driver takes one range per request

  // And back, as Recover sees it.
  const DeviceParams back = ParamsFromUblk(u);
  EXPECT_EQ(back.size_bytes, p.size_bytes);
  EXPECT_EQ(back.logical_block_size, 4096u);
  EXPECT_EQ(back.max_transfer_bytes, 128u * 1024);
  EXPECT_TRUE(back.volatile_cache);
  EXPECT_TRUE(back.fua);
  EXPECT_EQ(back.max_discard_bytes, 1ull << 30);
}

TEST(BuildParams, Defaults512) {
  DeviceParams p;
  p.size_bytes = 64 << 20;
  ASSERT_OK_AND_ASSIGN(uapi::ublk_params u, BuildParams(p, kBuf));
  EXPECT_EQ(u.types, uapi::UBLK_PARAM_TYPE_BASIC);  // no discard part at all
  EXPECT_EQ(u.basic.logical_bs_shift, 9);
  EXPECT_EQ(u.basic.physical_bs_shift, 9);
  EXPECT_EQ(u.basic.max_sectors, kBuf / 512);  // the tag buffer size
  EXPECT_EQ(u.basic.attrs, 0u);
}

TEST(BuildParams, WriteZeroesOnlyStillHasAGranularity) {
  DeviceParams p;
  p.size_bytes = 64 << 20;
  p.max_write_zeroes_bytes = 1 << 20;
  ASSERT_OK_AND_ASSIGN(uapi::ublk_params u, BuildParams(p, kBuf));
  EXPECT_EQ(u.discard.max_discard_sectors, 0u);
  EXPECT_EQ(u.discard.max_discard_segments, 0);
  EXPECT_EQ(u.discard.discard_granularity, 512u);  // the driver rejects 0
  EXPECT_EQ(u.discard.max_write_zeroes_sectors, 2048u);
}

TEST(BuildParams, FuaWithoutCacheIsDropped) {
  DeviceParams p;
  p.size_bytes = 64 << 20;
  p.fua = true;
  ASSERT_OK_AND_ASSIGN(uapi::ublk_params u, BuildParams(p, kBuf));
  EXPECT_EQ(u.basic.attrs, 0u);
}

TEST(BuildParams, ClampsHugeDiscardLimits) {
  DeviceParams p;
  p.size_bytes = 1ull << 40;
  p.max_discard_bytes = 1ull << 45;
  ASSERT_OK_AND_ASSIGN(uapi::ublk_params u, BuildParams(p, kBuf));
  EXPECT_EQ(u.discard.max_discard_sectors, UINT32_MAX);
}

TEST(BuildParams, RejectsWhatTheKernelWouldRefuse) {
  DeviceParams p;
  p.size_bytes = 64 << 20;
  p.logical_block_size = 1000;
  EXPECT_THAT(BuildParams(p, kBuf).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("logical_block_size")));
  p.logical_block_size = 8192;  // above the page size
  EXPECT_THAT(BuildParams(p, kBuf).status(), StatusIs(absl::StatusCode::kInvalidArgument));
  p.logical_block_size = 4096;
  p.physical_block_size = 512;
  EXPECT_THAT(BuildParams(p, kBuf).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("physical_block_size")));
  p.physical_block_size = 0;
  p.size_bytes = 4096 * 10 + 512;
  EXPECT_THAT(BuildParams(p, kBuf).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("size_bytes")));
  p.size_bytes = 64 << 20;
  p.max_transfer_bytes = 2 * kBuf;
  EXPECT_THAT(BuildParams(p, kBuf).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("max_transfer_bytes")));
  p.max_transfer_bytes = 0;
  p.max_discard_bytes = 1 << 20;
  p.discard_granularity = 1024;
  EXPECT_THAT(BuildParams(p, kBuf).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("discard_granularity")));
  p.discard_granularity = 0;
  EXPECT_THAT(BuildParams(p, kBuf), IsOk());
}

}  // namespace
}  // namespace nvmf_ublk::ublk
