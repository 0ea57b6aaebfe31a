#include "nvme/status.h"

#include "base/status.h"
#include "base/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nvme/spec.h"

namespace nvmf_ublk::nvme {
namespace {

using ::nvmf_ublk::testing::StatusIs;
using ::testing::HasSubstr;

CompletionStatus S(uint8_t sct, uint8_t sc, bool dnr = false, uint8_t crd = 0) {
  return CompletionStatus{MakeStatus(sct, sc, dnr, crd)};
}

TEST(CompletionStatus, DecodesFields) {
  // Status field 0x4381: DNR, CRD 0, SCT 3, SC 0x81... take a hand-built value instead:
  // DNR(14)=1, M(13)=1, CRD(12:11)=2, SCT(10:8)=1, SC=0x82.
  CompletionStatus s{static_cast<uint16_t>((1 << 14) | (1 << 13) | (2 << 11) | (1 << 8) | 0x82)};
  EXPECT_EQ(s.sc(), 0x82);
  EXPECT_EQ(s.sct(), 1);
  EXPECT_EQ(s.crd(), 2);
  EXPECT_TRUE(s.more());
  EXPECT_TRUE(s.dnr());
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(CompletionStatus{}.ok());
}

struct ClassCase {
  CompletionStatus status;
  RetryClass expected;
};

class ClassifyTest : public ::testing::TestWithParam<ClassCase> {};

TEST_P(ClassifyTest, Classifies) {
  EXPECT_EQ(Classify(GetParam().status), GetParam().expected)
      << StatusName(GetParam().status) << " -> " << ToString(Classify(GetParam().status));
}

INSTANTIATE_TEST_SUITE_P(
    Table, ClassifyTest,
    ::testing::Values(ClassCase{S(0, kScSuccess), RetryClass::kSuccess},
                      ClassCase{S(kSctPath, kScAnaInaccessible), RetryClass::kFailover},
                      ClassCase{S(kSctPath, kScAnaTransition), RetryClass::kFailover},
                      ClassCase{S(kSctPath, kScAnaPersistentLoss), RetryClass::kFailover},
                      ClassCase{S(kSctPath, kScInternalPathError), RetryClass::kFailover},
                      ClassCase{S(kSctPath, kScHostPathingError), RetryClass::kFailover},
                      ClassCase{S(kSctPath, kScAnaInaccessible, /*dnr=*/true), RetryClass::kFail},
                      ClassCase{S(0, kScInternalError, false, 1), RetryClass::kRetryLater},
                      ClassCase{S(0, kScNamespaceNotReady), RetryClass::kRetry},
                      ClassCase{S(0, kScAbortSqDeleted), RetryClass::kRetry},
                      ClassCase{S(0, kScNamespaceNotReady, /*dnr=*/true), RetryClass::kFail},
                      ClassCase{S(0, kScLbaOutOfRange, true), RetryClass::kFail},
                      ClassCase{S(0, kScInvalidField), RetryClass::kFail},
                      ClassCase{S(kSctMedia, kScUnrecoveredReadError), RetryClass::kFail},
                      ClassCase{S(kSctMedia, kScWriteFault, false, 3), RetryClass::kRetryLater}));

TEST(StatusName, KnownAndUnknown) {
  EXPECT_EQ(StatusName(S(kSctPath, kScAnaInaccessible)), "Asymmetric Access Inaccessible");
  EXPECT_EQ(StatusName(S(0, kScLbaOutOfRange)), "LBA Out of Range");
  EXPECT_EQ(StatusName(S(kSctCommandSpecific, kScConnectInvalidHost)), "Connect Invalid Host");
  EXPECT_EQ(StatusName(S(1, 0x42)), "SCT 1 SC 0x42");
}

TEST(ToStatus, CodesMessagesAndPayloadRoundTrip) {
  EXPECT_TRUE(ToStatus(S(0, 0), "Read").ok());
  absl::Status lba = ToStatus(S(0, kScLbaOutOfRange, true), "Read");
  EXPECT_THAT(lba, StatusIs(absl::StatusCode::kOutOfRange,
                            "Read: LBA Out of Range (sct 0x0 sc 0x80, dnr)"));
  EXPECT_THAT(
      ToStatus(S(kSctPath, kScAnaInaccessible), "Write"),
      StatusIs(absl::StatusCode::kUnavailable, HasSubstr("Asymmetric Access Inaccessible")));
  EXPECT_THAT(ToStatus(S(0, kScInternalError, false, 2), "Write"),
              StatusIs(absl::StatusCode::kAborted, HasSubstr("crd 2")));
  EXPECT_THAT(ToStatus(S(kSctMedia, kScUnrecoveredReadError), "Read"),
              StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(ToStatus(S(kSctCommandSpecific, kScConnectInvalidHost, true), "Connect"),
              StatusIs(absl::StatusCode::kPermissionDenied));
  auto carried = NvmeStatusOf(lba);
  ASSERT_TRUE(carried.has_value());
  EXPECT_EQ(carried->raw, S(0, kScLbaOutOfRange, true).raw);
  EXPECT_FALSE(NvmeStatusOf(absl::UnavailableError("connection reset")).has_value());
  EXPECT_EQ(StatusToErrno(lba), -ERANGE);
}

TEST(ClassifyStatus, TransportAndNvmeErrors) {
  EXPECT_EQ(ClassifyStatus(absl::OkStatus()), RetryClass::kSuccess);
  EXPECT_EQ(ClassifyStatus(absl::UnavailableError("connection reset")), RetryClass::kFailover);
  EXPECT_EQ(ClassifyStatus(absl::DeadlineExceededError("timeout")), RetryClass::kFailover);
  EXPECT_EQ(ClassifyStatus(absl::InvalidArgumentError("bad")), RetryClass::kFail);
  EXPECT_EQ(ClassifyStatus(ToStatus(S(kSctPath, kScAnaTransition), "Read")), RetryClass::kFailover);
  EXPECT_EQ(ClassifyStatus(ToStatus(S(0, kScNamespaceNotReady, false, 1), "Read")),
            RetryClass::kRetryLater);
  // A DNR NVMe status that maps to kUnavailable-like codes must still fail.
  EXPECT_EQ(ClassifyStatus(ToStatus(S(kSctPath, kScAnaInaccessible, true), "Read")),
            RetryClass::kFail);
}

}  // namespace
}  // namespace nvmf_ublk::nvme
