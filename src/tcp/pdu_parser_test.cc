#include "tcp/pdu_parser.h"

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nvme/spec.h"
#include "tcp/crc32c.h"
#include "tcp/pdu_codec.h"

namespace nvmf_ublk::tcp {
namespace {

using ::testing::HasSubstr;

// Records every PDU as a string event plus its data, so two parses can be compared exactly.
class Recorder : public PduReceiver {
 public:
  std::optional<PduError> OnPduHeader(const PduHeader& h, uint8_t** dest) override {
    buf.assign(h.data_len, 0);
    *dest = buf.data();
    return std::nullopt;
  }
  std::optional<PduError> OnPduComplete(const PduHeader& h, bool ok, const uint8_t* term) override {
    std::string e = std::string(ToString(h.type)) + " flags=" + std::to_string(h.flags) +
                    " len=" + std::to_string(h.data_len) + (ok ? "" : " BAD-DDGST") + " data=";
    const uint8_t* d = term ? term : buf.data();
    for (uint32_t i = 0; i < h.data_len; ++i) e += std::to_string(d[i]) + ",";
    events.push_back(e);
    return std::nullopt;
  }
  std::vector<uint8_t> buf;
  std::vector<std::string> events;
};

std::vector<uint8_t> Pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 7);
  return v;
}

// A controller-to-host stream of every C2H PDU type with digests and CPDA-style padding.
std::vector<uint8_t> MixedStream(const WireFormat& wf) {
  std::vector<uint8_t> s;
  uint8_t h[kMaxHeaderBytes];
  nvme::Cqe cqe{};
  cqe.cid.set(1);
  AppendPdu(&s, h, EncodeCapsuleResp(h, cqe, wf), {}, wf);
  auto d1 = Pattern(33, 1);
  AppendPdu(&s, h, EncodeDataPdu(h, PduType::kC2HData, 0, 2, 0, 0, 33, wf), d1, wf);
  auto d2 = Pattern(5, 9);
  AppendPdu(&s, h,
            EncodeDataPdu(h, PduType::kC2HData, kFlagLastPdu | kFlagSuccess, 2, 0, 33, 5, wf), d2,
            wf);
  AppendPdu(&s, h, EncodeR2T(h, 3, 4, 0, 8192, wf), {}, wf);
  const uint8_t bad[3] = {7, 8, 9};
  const uint32_t n = EncodeTermReq(h, PduType::kC2HTermReq, Fes::kPduSequenceError, 0, bad);
  s.insert(s.end(), h, h + n);
  return s;
}

class FragmentTest : public ::testing::TestWithParam<std::tuple<bool, bool, uint32_t>> {};

TEST_P(FragmentTest, EverySplitPointAndByteAtATimeGiveIdenticalEvents) {
  const auto [hd, dd, align] = GetParam();
  const WireFormat wf{hd, dd, align};
  const PduParserOptions opts{StreamDirection::kControllerToHost, hd, dd, align, 1 << 16};
  const std::vector<uint8_t> stream = MixedStream(wf);

  Recorder whole;
  PduParser p0(opts, &whole);
  ASSERT_EQ(p0.Feed(stream.data(), stream.size()), stream.size()) << p0.error().message;
  ASSERT_EQ(whole.events.size(), 5u);
  EXPECT_TRUE(p0.at_pdu_boundary());

  Recorder bytewise;
  PduParser p1(opts, &bytewise);
  for (uint8_t b : stream) ASSERT_EQ(p1.Feed(&b, 1), 1u);
  EXPECT_EQ(bytewise.events, whole.events);

  for (size_t split = 1; split < stream.size(); ++split) {
    Recorder r;
    PduParser p(opts, &r);
    p.Feed(stream.data(), split);
    p.Feed(stream.data() + split, stream.size() - split);
    ASSERT_EQ(r.events, whole.events) << "split at " << split;
  }

  // Zero-copy receive: fill RecvBuffer() in odd-sized pieces.
  Recorder zc;
  PduParser p2(opts, &zc);
  size_t off = 0, step = 1;
  while (off < stream.size()) {
    auto dst = p2.RecvBuffer();
    const size_t n = std::min({dst.size(), stream.size() - off, step});
    std::memcpy(dst.data(), stream.data() + off, n);
    ASSERT_TRUE(p2.Commit(n));
    off += n;
    step = step % 13 + 1;
  }
  EXPECT_EQ(zc.events, whole.events);
}

INSTANTIATE_TEST_SUITE_P(Digests, FragmentTest,
                         ::testing::Values(std::make_tuple(false, false, 4u),
                                           std::make_tuple(true, false, 4u),
                                           std::make_tuple(false, true, 4u),
                                           std::make_tuple(true, true, 4u),
                                           std::make_tuple(true, true, 32u)));

TEST(PduParser, DataDigestMismatchIsReportedNotFatal) {
  const WireFormat wf{false, true, 4};
  std::vector<uint8_t> s;
  uint8_t h[kMaxHeaderBytes];
  auto d = Pattern(64, 3);
  AppendPdu(&s, h, EncodeDataPdu(h, PduType::kC2HData, kFlagLastPdu, 1, 0, 0, 64, wf), d, wf);
  s[30] ^= 0x01;  // corrupt one data byte
  nvme::Cqe cqe{};
  AppendPdu(&s, h, EncodeCapsuleResp(h, cqe, wf), {}, wf);
  Recorder r;
  PduParser p(PduParserOptions{StreamDirection::kControllerToHost, false, true, 4, 4096}, &r);
  EXPECT_EQ(p.Feed(s.data(), s.size()), s.size());
  EXPECT_FALSE(p.failed());
  ASSERT_EQ(r.events.size(), 2u);
  EXPECT_THAT(r.events[0], HasSubstr("BAD-DDGST"));
  EXPECT_THAT(r.events[1], ::testing::Not(HasSubstr("BAD-DDGST")));
}

// One malformed-PDU case: start from a valid PDU, mutate it, expect FES/FEI and a message.
struct BadCase {
  const char* name;
  bool hdgst;  // negotiated header digest
  bool ddgst;  // negotiated data digest
  uint32_t align;
  std::function<std::vector<uint8_t>()> make;
  Fes fes;
  uint32_t fei;
  const char* message;
};

std::vector<uint8_t> Resp(const WireFormat& wf = {}) {
  std::vector<uint8_t> s;
  uint8_t h[kMaxHeaderBytes];
  nvme::Cqe cqe{};
  AppendPdu(&s, h, EncodeCapsuleResp(h, cqe, wf), {}, wf);
  return s;
}
std::vector<uint8_t> C2H(uint32_t len, uint8_t flags = kFlagLastPdu, const WireFormat& wf = {}) {
  std::vector<uint8_t> s;
  uint8_t h[kMaxHeaderBytes];
  AppendPdu(&s, h, EncodeDataPdu(h, PduType::kC2HData, flags, 1, 0, 0, len, wf), Pattern(len, 1),
            wf);
  return s;
}
std::vector<uint8_t> IcResp() {
  std::vector<uint8_t> s(128);
  EncodeIcResp(s.data(), 0, 0, 8192);
  return s;
}
template <typename F>
std::function<std::vector<uint8_t>()> Mut(std::vector<uint8_t> base, F f) {
  return [base, f]() mutable {
    f(base);
    return base;
  };
}

class MalformedTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(MalformedTest, RejectedWithFesAndFieldOffset) {
  const BadCase& c = GetParam();
  Recorder r;
  PduParser p(PduParserOptions{StreamDirection::kControllerToHost, c.hdgst, c.ddgst, c.align, 4096},
              &r);
  const std::vector<uint8_t> bytes = c.make();
  // Byte at a time: the error must not depend on fragmentation.
  for (uint8_t b : bytes) {
    if (p.Feed(&b, 1) != 1) break;
  }
  ASSERT_TRUE(p.failed()) << c.name << ": accepted";
  EXPECT_EQ(p.error().fes, c.fes) << p.error().message;
  EXPECT_EQ(p.error().fei, c.fei) << p.error().message;
  EXPECT_THAT(p.error().message, HasSubstr(c.message));
  EXPECT_TRUE(r.events.empty());
  EXPECT_FALSE(p.offending_header().empty());
  EXPECT_TRUE(p.RecvBuffer().empty());
  const uint8_t more = 0;
  EXPECT_EQ(p.Feed(&more, 1), 0u);
}

INSTANTIATE_TEST_SUITE_P(
    Table, MalformedTest,
    ::testing::Values(
        BadCase{"unknown type", false, false, 4,
                Mut(Resp(), [](auto& b) { b[0] = 0x08; }), Fes::kInvalidHeaderField, 0,
                "unexpected PDU type 0x08"},
        BadCase{"host-to-controller type", false, false, 4,
                Mut(Resp(), [](auto& b) { b[0] = 0x04; }), Fes::kInvalidHeaderField, 0,
                "unexpected PDU type 0x04"},
        BadCase{"CapsuleResp hlen", false, false, 4, Mut(Resp(), [](auto& b) { b[2] = 25; }),
                Fes::kInvalidHeaderField, 2, "CapsuleResp HLEN 25, expected 24"},
        BadCase{"ICResp hlen", false, false, 4, Mut(IcResp(), [](auto& b) { b[2] = 24; }),
                Fes::kInvalidHeaderField, 2, "ICResp HLEN 24"},
        BadCase{"reserved flag", false, false, 4, Mut(Resp(), [](auto& b) { b[1] = 0x10; }),
                Fes::kInvalidHeaderField, 1, "reserved bits"},
        BadCase{"HDGSTF without negotiation", false, false, 4,
                Mut(Resp(), [](auto& b) { b[1] = kFlagHdgst; }), Fes::kInvalidHeaderField, 1,
                "HDGSTF is 1 but header digest is not enabled"},
        BadCase{"HDGSTF missing", true, false, 4, [] { return Resp(); }, Fes::kInvalidHeaderField,
                1, "HDGSTF is 0 but header digest is enabled"},
        BadCase{"LAST_PDU on CapsuleResp", false, false, 4,
                Mut(Resp(), [](auto& b) { b[1] = kFlagLastPdu; }), Fes::kInvalidHeaderField, 1,
                "only exist on data PDUs"},
        BadCase{"SUCCESS without LAST_PDU", false, false, 4, [] { return C2H(8, kFlagSuccess); },
                Fes::kInvalidHeaderField, 1, "SUCCESS flag without LAST_PDU"},
        BadCase{"DDGSTF on R2T", false, false, 4,
                [] {
                  std::vector<uint8_t> s(24);
                  EncodeR2T(s.data(), 1, 1, 0, 512, WireFormat{});
                  s[1] = kFlagDdgst;
                  return s;
                },
                Fes::kInvalidHeaderField, 1, "carries no data but DDGSTF"},
        BadCase{"CapsuleResp PDO", false, false, 4, Mut(Resp(), [](auto& b) { b[3] = 24; }),
                Fes::kInvalidHeaderField, 3, "PDO 24, expected 0"},
        BadCase{"CapsuleResp PLEN", false, false, 4, Mut(Resp(), [](auto& b) { b[4] = 28; }),
                Fes::kInvalidHeaderField, 4, "PLEN 28, expected 24"},
        BadCase{"ICResp PLEN", false, false, 4, Mut(IcResp(), [](auto& b) { b[4] = 100; }),
                Fes::kInvalidHeaderField, 4, "ICResp PLEN 100"},
        BadCase{"C2HData PDO inside header", false, false, 4,
                Mut(C2H(16), [](auto& b) { b[3] = 8; }), Fes::kInvalidHeaderField, 3,
                "PDO 8: must be >= 24"},
        BadCase{"C2HData PDO misaligned", false, false, 8,
                Mut(C2H(16), [](auto& b) {
                  b[3] = 28;
                  b[4] = 28 + 16;
                }),
                Fes::kInvalidHeaderField, 3, "multiple of 8"},
        BadCase{"C2HData no data", false, false, 4, Mut(C2H(16), [](auto& b) { b[4] = 24; }),
                Fes::kInvalidHeaderField, 4, "leaves no data"},
        BadCase{"C2HData DATAL 0", false, false, 4, Mut(C2H(16), [](auto& b) { b[16] = 0; }),
                Fes::kInvalidHeaderField, 16, "DATAL is 0"},
        BadCase{"C2HData PLEN/DATAL mismatch", false, false, 4,
                Mut(C2H(16), [](auto& b) { b[16] = 12; }), Fes::kInvalidHeaderField, 4,
                "does not match PDO 24 + DATAL 12"},
        BadCase{"C2HData over limit", false, false, 4, [] { return C2H(4097); },
                Fes::kR2TLimitExceeded, 4, "4097 data bytes, limit 4096"},
        BadCase{"DDGSTF missing", false, true, 4, [] { return C2H(8); }, Fes::kInvalidHeaderField,
                1, "DDGSTF is 0 but data digest is enabled"},
        BadCase{"TermReq too long", false, false, 4,
                [] {
                  std::vector<uint8_t> s(24 + 200);
                  EncodeTermReq(s.data(), PduType::kC2HTermReq, Fes::kPduSequenceError, 0, {});
                  StoreLe32(s.data() + 4, 24 + 200);
                  return s;
                },
                Fes::kInvalidHeaderField, 4, "outside [24, 152]"},
        BadCase{"header digest mismatch", true, false, 4,
                Mut(Resp(WireFormat{true, false, 4}), [](auto& b) { b[24] ^= 0xFF; }),
                Fes::kHeaderDigestError, 0, "header digest mismatch"},
        BadCase{"header digest over altered field", true, false, 4,
                Mut(Resp(WireFormat{true, false, 4}), [](auto& b) { b[20] ^= 0x01; }),
                Fes::kHeaderDigestError, 0, "header digest mismatch"}),
    [](const ::testing::TestParamInfo<BadCase>& param_info) {
      std::string n = param_info.param.name;
      for (char& ch : n) {
        if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
      }
      return n;
    });

TEST(PduParser, ReceiverErrorStopsTheStream) {
  class Refuse : public PduReceiver {
    std::optional<PduError> OnPduHeader(const PduHeader&, uint8_t**) override {
      return PduError{Fes::kPduSequenceError, 0, "not now"};
    }
    std::optional<PduError> OnPduComplete(const PduHeader&, bool, const uint8_t*) override {
      return std::nullopt;
    }
  } refuse;
  PduParser p(PduParserOptions{}, &refuse);
  const auto s = Resp();
  p.Feed(s.data(), s.size());
  ASSERT_TRUE(p.failed());
  EXPECT_EQ(p.error().fes, Fes::kPduSequenceError);
  EXPECT_EQ(p.error().message, "not now");
  EXPECT_EQ(p.offending_header().size(), 24u);
}

TEST(PduParser, HostToControllerDirectionAcceptsCapsuleCmdWithData) {
  const WireFormat wf{true, true, PdaBytes(1)};
  std::vector<uint8_t> s;
  uint8_t h[kMaxHeaderBytes];
  nvme::Sqe sqe{};
  sqe.opcode = 0x01;
  AppendPdu(&s, h, EncodeCapsuleCmd(h, sqe, 100, wf), Pattern(100, 5), wf);
  AppendPdu(&s, h, EncodeCapsuleCmd(h, sqe, 0, wf), {}, wf);
  Recorder r;
  PduParser p(PduParserOptions{StreamDirection::kHostToController, true, true, 8, 8192}, &r);
  EXPECT_EQ(p.Feed(s.data(), s.size()), s.size()) << p.error().message;
  ASSERT_EQ(r.events.size(), 2u);
  EXPECT_THAT(r.events[0], HasSubstr("CapsuleCmd flags=3 len=100"));
  EXPECT_THAT(r.events[1], HasSubstr("CapsuleCmd flags=1 len=0"));
  // A C2H type is refused in this direction.
  Recorder r2;
  PduParser p2(PduParserOptions{StreamDirection::kHostToController}, &r2);
  const auto resp = Resp();
  p2.Feed(resp.data(), resp.size());
  EXPECT_TRUE(p2.failed());
}

}  // namespace
}  // namespace nvmf_ublk::tcp
