#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/endian.h"
#include "base/log.h"
#include "base/status.h"
#include "base/testing/status_matchers.h"
#include "base/unique_fd.h"
#include "gtest/gtest.h"

namespace nvmf_ublk {
namespace {

using ::nvmf_ublk::testing::IsOk;
using ::nvmf_ublk::testing::StatusIs;
using ::testing::HasSubstr;

absl::StatusOr<int> Half(int v) {
  if (v % 2) return absl::InvalidArgumentError("odd");
  return v / 2;
}

absl::StatusOr<int> Quarter(int v) {
  ASSIGN_OR_RETURN(int h, Half(v));
  ASSIGN_OR_RETURN(auto q, Half(h));
  return q;
}

absl::Status CheckEven(int v) {
  RETURN_IF_ERROR(Half(v));
  RETURN_IF_ERROR(absl::OkStatus());
  return absl::OkStatus();
}

TEST(StatusMacros, AssignOrReturnPropagates) {
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_THAT(Quarter(6), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("odd")));
  EXPECT_THAT(CheckEven(4), IsOk());
  EXPECT_THAT(CheckEven(3), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(StatusMacros, AssertOkAndAssign) {
  ASSERT_OK_AND_ASSIGN(int v, Half(10));
  EXPECT_EQ(v, 5);
}

TEST(ErrnoConversion, MapsCodesBothWays) {
  EXPECT_THAT(ErrnoToStatus(ECONNREFUSED, "connect 127.0.0.1:1"),
              StatusIs(absl::StatusCode::kUnavailable, "connect 127.0.0.1:1: Connection refused"));
  EXPECT_THAT(ErrnoToStatus(-ETIMEDOUT, ""), StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_THAT(ErrnoToStatus(EACCES, "x"), StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(ErrnoToStatus(0, "x"), IsOk());
  EXPECT_EQ(StatusToErrno(absl::OkStatus()), 0);
  EXPECT_EQ(StatusToErrno(absl::InvalidArgumentError("")), -EINVAL);
  EXPECT_EQ(StatusToErrno(absl::UnavailableError("")), -EIO);
  EXPECT_EQ(StatusToErrno(absl::DataLossError("")), -EIO);
  EXPECT_EQ(StatusToErrno(absl::DeadlineExceededError("")), -ETIMEDOUT);
  EXPECT_EQ(StatusToErrno(absl::OutOfRangeError("")), -ERANGE);
}

TEST(Endian, LoadStoreLittleEndian) {
  uint8_t b[8] = {};
  StoreLe32(b, 0x11223344);
  EXPECT_EQ(b[0], 0x44);
  EXPECT_EQ(b[3], 0x11);
  EXPECT_EQ(LoadLe32(b), 0x11223344u);
  StoreLe64(b, 0x0102030405060708ull);
  EXPECT_EQ(b[0], 0x08);
  EXPECT_EQ(b[7], 0x01);
  EXPECT_EQ(LoadLe16(b), 0x0708);
  Le16 f;
  f.set(0xABCD);
  EXPECT_EQ(f.bytes[0], 0xCD);
  EXPECT_EQ(f.get(), 0xABCD);
}

TEST(Log, SinkSeesEnabledLevelsOnly) {
  std::vector<std::string> lines;
  ScopedLogSink sink([&](LogLevel, std::string_view t) { lines.emplace_back(t); });
  LogLevel old = MinLogLevel();
  SetMinLogLevel(LogLevel::kWarning);
  NLOG(INFO) << "hidden";
  NLOG(WARNING) << "shown " << 42;
  SetMinLogLevel(old);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], "shown 42");
  LogLevel l;
  EXPECT_TRUE(ParseLogLevel("Debug", &l));
  EXPECT_EQ(l, LogLevel::kDebug);
  EXPECT_FALSE(ParseLogLevel("loud", &l));
}

TEST(LogDeathTest, CheckAborts) {
  EXPECT_DEATH({ NCHECK(1 + 1 == 3) << "math"; }, "check failed: 1 \\+ 1 == 3 math");
}

TEST(UniqueFd, ClosesAndMoves) {
  int raw = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(raw, 0);
  {
    UniqueFd a(raw);
    UniqueFd b(std::move(a));
    EXPECT_FALSE(a.valid());
    EXPECT_EQ(b.get(), raw);
  }
  EXPECT_EQ(::fcntl(raw, F_GETFD), -1);
  EXPECT_EQ(errno, EBADF);
}

TEST(Clock, FakeClockAdvances) {
  FakeClock c(100);
  c.Advance(50);
  EXPECT_EQ(c.NowNanos(), 150);
  int64_t a = Clock::Real().NowNanos();
  EXPECT_GE(Clock::Real().NowNanos(), a);
}

}  // namespace
}  // namespace nvmf_ublk
