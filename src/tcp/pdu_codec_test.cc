// Known bytes for every PDU, hand-checked against the NVMe/TCP 1.0 figures, and round trips
// through the parser.
#include "tcp/pdu_codec.h"

#include <cstring>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nvme/commands.h"
#include "tcp/crc32c.h"
#include "tcp/pdu_parser.h"

namespace nvmf_ublk::tcp {
namespace {

using ::testing::ElementsAreArray;

std::vector<uint8_t> Head(const uint8_t* p, size_t n) { return {p, p + n}; }

TEST(PduCodec, IcReqKnownBytes) {
  uint8_t b[kMaxHeaderBytes];
  ASSERT_EQ(EncodeIcReq(b, 0, kDgstHeader | kDgstData, 3), 128u);
  // CH: type 0, flags 0, hlen 128, pdo 0, plen 128; PFV 0; HPDA 0; DGST 3; MAXR2T 3.
  EXPECT_THAT(Head(b, 16), ElementsAreArray({0x00, 0x00, 0x80, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00,
                                             0x00, 0x00, 0x03, 0x03, 0x00, 0x00, 0x00}));
  for (int i = 16; i < 128; ++i) ASSERT_EQ(b[i], 0) << i;
}

TEST(PduCodec, IcRespKnownBytes) {
  uint8_t b[kMaxHeaderBytes];
  ASSERT_EQ(EncodeIcResp(b, 2, kDgstData, 131072), 128u);
  EXPECT_THAT(Head(b, 16), ElementsAreArray({0x01, 0x00, 0x80, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00,
                                             0x00, 0x02, 0x02, 0x00, 0x00, 0x02, 0x00}));
}

TEST(PduCodec, CapsuleCmdWithoutDataKnownBytes) {
  uint8_t b[kMaxHeaderBytes];
  nvme::Sqe sqe = nvme::BuildKeepAlive();
  sqe.cid.set(0x0102);
  ASSERT_EQ(EncodeCapsuleCmd(b, sqe, 0, WireFormat{}), 72u);
  EXPECT_THAT(Head(b, 12), ElementsAreArray({0x04, 0x00, 0x48, 0x00, 0x48, 0x00, 0x00, 0x00, 0x18,
                                             0x40, 0x02, 0x01}));
}

TEST(PduCodec, CapsuleCmdWithDataDigestsAndCpda) {
  uint8_t b[kMaxHeaderBytes];
  nvme::Sqe sqe = nvme::BuildWrite(1, 0, 1, false);
  // HDGST + DDGST, CPDA 7 (32-byte alignment): header 72 + 4 digest = 76 -> PDO 96.
  const WireFormat wf{true, true, PdaBytes(7)};
  const uint32_t n = EncodeCapsuleCmd(b, sqe, 512, wf);
  ASSERT_EQ(n, 96u);
  EXPECT_EQ(b[0], 0x04);
  EXPECT_EQ(b[1], kFlagHdgst | kFlagDdgst);
  EXPECT_EQ(b[2], 72);
  EXPECT_EQ(b[3], 96);
  EXPECT_EQ(LoadLe32(b + 4), 96u + 512 + 4);
  EXPECT_EQ(LoadLe32(b + 72), Crc32c(b, 72));
  for (int i = 76; i < 96; ++i) ASSERT_EQ(b[i], 0) << "padding byte " << i;
}

TEST(PduCodec, CapsuleRespKnownBytes) {
  uint8_t b[kMaxHeaderBytes];
  nvme::Cqe cqe{};
  cqe.dw0.set(0x11223344);
  cqe.sq_head.set(5);
  cqe.cid.set(0xABCD);
  cqe.status.set(0x0004);  // SC 2 (Invalid Field)
  ASSERT_EQ(EncodeCapsuleResp(b, cqe, WireFormat{}), 24u);
  EXPECT_THAT(Head(b, 24), ElementsAreArray({0x05, 0x00, 0x18, 0x00, 0x18, 0x00, 0x00, 0x00,
                                             0x44, 0x33, 0x22, 0x11, 0x00, 0x00, 0x00, 0x00,
                                             0x05, 0x00, 0x00, 0x00, 0xCD, 0xAB, 0x04, 0x00}));
  ASSERT_EQ(EncodeCapsuleResp(b, cqe, WireFormat{true, false, 4}), 28u);
  EXPECT_EQ(b[1], kFlagHdgst);
  EXPECT_EQ(LoadLe32(b + 4), 28u);
  EXPECT_EQ(LoadLe32(b + 24), Crc32c(b, 24));
}

TEST(PduCodec, DataPdusKnownBytes) {
  uint8_t b[kMaxHeaderBytes];
  ASSERT_EQ(EncodeDataPdu(b, PduType::kH2CData, kFlagLastPdu, 0x0007, 0x0009, 0x1000, 0x200,
                          WireFormat{}),
            24u);
  EXPECT_THAT(Head(b, 24), ElementsAreArray({0x06, 0x04, 0x18, 0x18, 0x18, 0x02, 0x00, 0x00,
                                             0x07, 0x00, 0x09, 0x00, 0x00, 0x10, 0x00, 0x00,
                                             0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}));
  ASSERT_EQ(EncodeDataPdu(b, PduType::kC2HData, kFlagLastPdu | kFlagSuccess, 3, 0, 0, 4096,
                          WireFormat{false, true, 4}),
            24u);
  EXPECT_EQ(b[0], 0x07);
  EXPECT_EQ(b[1], kFlagDdgst | kFlagLastPdu | kFlagSuccess);
  EXPECT_EQ(LoadLe32(b + 4), 24u + 4096 + 4);
}

TEST(PduCodec, R2TAndTermReqKnownBytes) {
  uint8_t b[kMaxHeaderBytes];
  ASSERT_EQ(EncodeR2T(b, 0x0010, 0x0020, 0x2000, 0x8000, WireFormat{}), 24u);
  EXPECT_THAT(Head(b, 24), ElementsAreArray({0x09, 0x00, 0x18, 0x00, 0x18, 0x00, 0x00, 0x00,
                                             0x10, 0x00, 0x20, 0x00, 0x00, 0x20, 0x00, 0x00,
                                             0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}));
  const uint8_t bad[8] = {0x42, 0, 24, 0, 24, 0, 0, 0};
  ASSERT_EQ(EncodeTermReq(b, PduType::kH2CTermReq, Fes::kInvalidHeaderField, 2, bad), 32u);
  EXPECT_THAT(Head(b, 32),
              ElementsAreArray({0x02, 0x00, 0x18, 0x00, 0x20, 0x00, 0x00, 0x00, 0x01, 0x00, 0x02,
                                0x00, 0x00, 0x00, 0,    0,    0,    0,    0,    0,    0,    0,
                                0,    0,    0x42, 0,    24,   0,    24,   0,    0,    0}));
  // Offending data is capped at 128 bytes.
  std::vector<uint8_t> big(300, 0xEE);
  EXPECT_EQ(EncodeTermReq(b, PduType::kC2HTermReq, Fes::kPduSequenceError, 0, big), 152u);
}

// Every encoder's output parses back to the same fields.
class Collect : public PduReceiver {
 public:
  std::optional<PduError> OnPduHeader(const PduHeader& h, uint8_t** dest) override {
    data.assign(h.data_len, 0);
    *dest = data.data();
    return std::nullopt;
  }
  std::optional<PduError> OnPduComplete(const PduHeader& h, bool ok, const uint8_t*) override {
    types.push_back(h.type);
    digests_ok.push_back(ok);
    last_header.assign(h.bytes, h.bytes + h.hlen);
    return std::nullopt;
  }
  std::vector<uint8_t> data, last_header;
  std::vector<PduType> types;
  std::vector<bool> digests_ok;
};

TEST(PduCodec, RoundTripThroughParserWithDigests) {
  const WireFormat wf{true, true, PdaBytes(3)};
  std::vector<uint8_t> stream;
  uint8_t h[kMaxHeaderBytes];
  std::vector<uint8_t> payload(777);
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<uint8_t>(i * 13);
  uint32_t n = EncodeDataPdu(h, PduType::kC2HData, kFlagLastPdu, 5, 0, 0, 777, wf);
  EXPECT_EQ(n % 16, 0u);
  AppendPdu(&stream, h, n, payload, wf);
  Collect c;
  PduParser parser(PduParserOptions{StreamDirection::kControllerToHost, true, true, 16, 4096}, &c);
  EXPECT_EQ(parser.Feed(stream.data(), stream.size()), stream.size());
  ASSERT_FALSE(parser.failed()) << parser.error().message;
  ASSERT_EQ(c.types.size(), 1u);
  EXPECT_EQ(c.types[0], PduType::kC2HData);
  EXPECT_TRUE(c.digests_ok[0]);
  EXPECT_EQ(c.data, payload);
  const auto* d = reinterpret_cast<const DataPdu*>(c.last_header.data());
  EXPECT_EQ(d->cccid.get(), 5);
  EXPECT_EQ(d->datal.get(), 777u);
}

}  // namespace
}  // namespace nvmf_ublk::tcp
