#include "ublk/control.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "base/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nvmf_ublk::ublk {
namespace {

using ::nvmf_ublk::testing::IsOk;
using ::nvmf_ublk::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A scripted kernel: which opcode encodings it knows, what GET_FEATURES answers, and a fixed error.
class FakeKernel : public ControlTransport {
 public:
  bool has_get_features = true;
  bool knows_ioctl = true;
  bool knows_legacy = true;
  uint64_t features = 0x1fe;  // 6.12
  int error = 0;              // returned by every command but GET_FEATURES when set
  std::vector<uint32_t> ops;  // every opcode received
  uapi::ublksrv_ctrl_cmd last{};

  int Execute(uint32_t op, const uapi::ublksrv_ctrl_cmd& cmd, const CommandWait&) override {
    ops.push_back(op);
    last = cmd;
    const bool is_ioctl = ((op >> _IOC_TYPESHIFT) & _IOC_TYPEMASK) == 'u';
    if (op == uapi::UBLK_U_CMD_GET_FEATURES) {
      if (!has_get_features) return -EOPNOTSUPP;
      if (cmd.len != uapi::UBLK_FEATURES_LEN) return -EINVAL;
      std::memcpy(reinterpret_cast<void*>(cmd.addr), &features, sizeof(features));
      return 0;
    }
    if (is_ioctl && !knows_ioctl) return -EINVAL;  // 6.1: unknown opcode number
    if (!is_ioctl && !knows_legacy) return -EOPNOTSUPP;
    if (error != 0) return error;
    const uint32_t nr = uapi::IocNr(op);
    if (nr == uapi::UBLK_CMD_ADD_DEV) {
      auto* info = reinterpret_cast<uapi::ublksrv_ctrl_dev_info*>(cmd.addr);
      if (cmd.len != sizeof(*info) || cmd.queue_id != 0xffff || cmd.dev_id != info->dev_id) {
        return -EINVAL;
      }
      info->dev_id = info->dev_id == UINT32_MAX ? 3 : info->dev_id;
      info->flags &= features;
      info->flags |= uapi::UBLK_F_URING_CMD_COMP_IN_TASK;
    }
    if (nr == uapi::UBLK_CMD_GET_DEV_INFO2) {
      // "/dev/ublkcN\0" then the answer.
      const char* path = reinterpret_cast<const char*>(cmd.addr);
      if (cmd.dev_path_len != std::strlen(path) + 1 ||
          cmd.len != cmd.dev_path_len + sizeof(uapi::ublksrv_ctrl_dev_info)) {
        return -EINVAL;
      }
      if (std::string(path) != "/dev/ublkc" + std::to_string(cmd.dev_id)) return -EPERM;
      uapi::ublksrv_ctrl_dev_info info{};
      info.dev_id = cmd.dev_id;
      info.state = uapi::UBLK_S_DEV_QUIESCED;
      info.nr_hw_queues = 2;
      std::memcpy(reinterpret_cast<char*>(cmd.addr) + cmd.dev_path_len, &info, sizeof(info));
    }
    if (nr == uapi::UBLK_CMD_GET_DEV_INFO) {
      auto* info = reinterpret_cast<uapi::ublksrv_ctrl_dev_info*>(cmd.addr);
      info->dev_id = cmd.dev_id;
      info->nr_hw_queues = 4;
    }
    return 0;
  }
};

struct Fixture {
  FakeKernel* kernel;
  std::unique_ptr<ControlDevice> control;
};
Fixture Make(void (*setup)(FakeKernel&)) {
  auto k = std::make_unique<FakeKernel>();
  setup(*k);
  FakeKernel* raw = k.get();
  return Fixture{raw, std::make_unique<ControlDevice>(std::move(k))};
}

uapi::ublksrv_ctrl_dev_info AddRequest() {
  uapi::ublksrv_ctrl_dev_info info{};
  info.nr_hw_queues = 2;
  info.queue_depth = 64;
  info.max_io_buf_bytes = 1 << 19;
  info.dev_id = UINT32_MAX;
  info.flags = uapi::UBLK_F_USER_RECOVERY | uapi::UBLK_F_USER_RECOVERY_REISSUE;
  return info;
}

TEST(ControlDevice, ModernKernelUsesIoctlEncodingAndProbedFeatures) {
  Fixture f = Make([](FakeKernel&) {});
  EXPECT_TRUE(f.control->features_probed());
  EXPECT_EQ(f.control->features(), 0x1feu);
  EXPECT_TRUE(f.control->ioctl_encoding());
  ASSERT_OK_AND_ASSIGN(auto info, f.control->AddDevice(AddRequest()));
  EXPECT_EQ(info.dev_id, 3u);
  EXPECT_EQ(info.flags & uapi::UBLK_F_USER_RECOVERY_REISSUE, uapi::UBLK_F_USER_RECOVERY_REISSUE);
  EXPECT_THAT(f.control->StartDevice(3, 1234), IsOk());
  EXPECT_EQ(f.kernel->last.data[0], 1234u);  // the server pid
  EXPECT_THAT(f.control->StopDevice(3), IsOk());
  EXPECT_THAT(f.control->DeleteDevice(3), IsOk());
  EXPECT_THAT(f.kernel->ops, ElementsAre(uapi::UBLK_U_CMD_GET_FEATURES, uapi::UBLK_U_CMD_ADD_DEV,
                                         uapi::UBLK_U_CMD_START_DEV, uapi::UBLK_U_CMD_STOP_DEV,
                                         uapi::UBLK_U_CMD_DEL_DEV));
}

TEST(ControlDevice, Linux61FallsBackToLegacyOpcodesOnce) {
  Fixture f = Make([](FakeKernel& k) {
    k.has_get_features = false;
    k.knows_ioctl = false;
  });
  EXPECT_FALSE(f.control->features_probed());
  EXPECT_EQ(f.control->features(), uapi::kFeaturesLinux61);
  ASSERT_OK_AND_ASSIGN(auto info, f.control->AddDevice(AddRequest()));
  EXPECT_EQ(info.dev_id, 3u);
  EXPECT_FALSE(f.control->ioctl_encoding());
  EXPECT_THAT(f.control->SetParams(3, uapi::ublk_params{}), IsOk());
  // ADD_DEV tried encoded, then legacy; SET_PARAMS went straight to legacy.
  EXPECT_THAT(f.kernel->ops, ElementsAre(uapi::UBLK_U_CMD_GET_FEATURES, uapi::UBLK_U_CMD_ADD_DEV,
                                         uapi::UBLK_CMD_ADD_DEV, uapi::UBLK_CMD_SET_PARAMS));
}

TEST(ControlDevice, Linux64HasEncodingButNoGetFeatures) {
  Fixture f = Make([](FakeKernel& k) { k.has_get_features = false; });
  EXPECT_EQ(f.control->features(), uapi::kFeaturesLinux61);
  EXPECT_FALSE(f.control->ioctl_encoding());  // not known yet
  EXPECT_THAT(f.control->StopDevice(1), IsOk());
  EXPECT_TRUE(f.control->ioctl_encoding());
  EXPECT_THAT(f.kernel->ops, ElementsAre(uapi::UBLK_U_CMD_GET_FEATURES, uapi::UBLK_U_CMD_STOP_DEV));
}

TEST(ControlDevice, RealErrorIsKeptWhenLegacyOpcodesAreGone) {
  // A kernel without CONFIG_BLKDEV_UBLK_LEGACY_OPCODES and without GET_FEATURES that rejects the
  // arguments: the caller must see EINVAL from the encoded command, not the legacy refusal.
  Fixture f = Make([](FakeKernel& k) {
    k.has_get_features = false;
    k.knows_legacy = false;
    k.error = -EINVAL;
  });
  EXPECT_THAT(f.control->AddDevice(AddRequest()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("ADD_DEV")));
}

TEST(ControlDevice, ClearErrors) {
  Fixture f = Make([](FakeKernel& k) { k.error = -EPERM; });
  EXPECT_THAT(f.control->AddDevice(AddRequest()).status(),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("permission denied")));
  f.kernel->error = -ENODEV;
  EXPECT_THAT(f.control->StopDevice(5),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("device 5")));
  f.kernel->error = -EEXIST;
  EXPECT_THAT(f.control->AddDevice(AddRequest()).status(),
              StatusIs(absl::StatusCode::kAlreadyExists));
  f.kernel->error = -EBUSY;
  EXPECT_THAT(f.control->StartUserRecovery(5),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("START_USER_RECOVERY")));
  f.kernel->error = -ETIMEDOUT;
  EXPECT_THAT(f.control->StartDevice(5, 1), StatusIs(absl::StatusCode::kDeadlineExceeded));
}

TEST(ControlDevice, GetDeviceInfo2CarriesTheCharDevicePath) {
  Fixture f = Make([](FakeKernel&) {});  // 0x1fe has UNPRIVILEGED_DEV: GET_DEV_INFO2
  ASSERT_OK_AND_ASSIGN(auto info, f.control->GetDeviceInfo(12));
  EXPECT_EQ(info.dev_id, 12u);
  EXPECT_EQ(info.state, uapi::UBLK_S_DEV_QUIESCED);
  EXPECT_EQ(f.kernel->ops.back(), uapi::UBLK_U_CMD_GET_DEV_INFO2);
}

TEST(ControlDevice, GetDeviceInfoOnOldKernels) {
  Fixture f = Make([](FakeKernel& k) { k.has_get_features = false; });
  ASSERT_OK_AND_ASSIGN(auto info, f.control->GetDeviceInfo(7));
  EXPECT_EQ(info.nr_hw_queues, 4);
  EXPECT_EQ(f.kernel->ops.back(), uapi::UBLK_U_CMD_GET_DEV_INFO);
}

TEST(ControlDevice, MissingDriverSaysWhatToDo) {
  EXPECT_THAT(ControlDevice::Open("/nonexistent/ublk-control").status(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("kernel has no ublk driver: /nonexistent/ublk-control")));
  EXPECT_THAT(ControlDevice::Open("/nonexistent/ublk-control").status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("modprobe ublk_drv")));
}

TEST(ControlDevice, MissingDriverOnThisHost) {
  struct stat st;
  if (stat(kControlPath, &st) == 0) GTEST_SKIP() << kControlPath << " exists (ublk_drv loaded)";
  EXPECT_THAT(ControlDevice::Open().status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("modprobe ublk_drv")));
}

TEST(ControlNames, Decode) {
  EXPECT_STREQ(ControlCommandName(uapi::UBLK_CMD_END_USER_RECOVERY), "END_USER_RECOVERY");
  EXPECT_STREQ(ControlCommandName(uapi::UBLK_CMD_GET_FEATURES_NR), "GET_FEATURES");
  EXPECT_EQ(FeatureNames(0x1fe),
            "URING_CMD_COMP_IN_TASK|NEED_GET_DATA|USER_RECOVERY|USER_RECOVERY_REISSUE|"
            "UNPRIVILEGED_DEV|CMD_IOCTL_ENCODE|USER_COPY|ZONED");
  EXPECT_EQ(FeatureNames(0), "none");
  EXPECT_EQ(FeatureNames(1ull << 40), "bit40");
  EXPECT_STREQ(DeviceStateName(uapi::UBLK_S_DEV_QUIESCED), "QUIESCED");
}

}  // namespace
}  // namespace nvmf_ublk::ublk
