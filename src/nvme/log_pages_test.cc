#include "nvme/log_pages.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/endian.h"
#include "base/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nvmf_ublk::nvme {
namespace {

using ::nvmf_ublk::testing::IsOk;
using ::nvmf_ublk::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

using LogRead = DiscoveryLogReader::LogRead;

// --- Discovery log images, built from the spec's offsets (NVMe-oF 1.1 Figures 39, 40) ------------

struct Entry {
  uint8_t trtype = kTrtypeTcp;
  uint8_t adrfam = kAdrfamIpv4;
  uint8_t subtype = kSubtypeNvme;
  uint8_t treq = 0;
  uint16_t portid = 1;
  uint16_t cntlid = 0xFFFF;
  uint16_t asqsz = 32;
  uint16_t eflags = 0;
  std::string trsvcid = "4420";
  std::string subnqn = "nqn.2026-01.io.test:subsys1";
  std::string traddr = "192.168.1.10";
  uint8_t sectype = 0;
};

// Space padding for TRSVCID/TRADDR (as Linux nvmet does), NUL padding for SUBNQN.
void PutEntry(uint8_t* e, const Entry& in) {
  std::memset(e, 0, 1024);
  e[0] = in.trtype;
  e[1] = in.adrfam;
  e[2] = in.subtype;
  e[3] = in.treq;
  StoreLe16(e + 4, in.portid);
  StoreLe16(e + 6, in.cntlid);
  StoreLe16(e + 8, in.asqsz);
  StoreLe16(e + 10, in.eflags);
  std::memset(e + 32, ' ', 32);
  std::memcpy(e + 32, in.trsvcid.data(), std::min<size_t>(in.trsvcid.size(), 32));
  std::memcpy(e + 256, in.subnqn.data(), std::min<size_t>(in.subnqn.size(), 256));
  std::memset(e + 512, ' ', 256);
  std::memcpy(e + 512, in.traddr.data(), std::min<size_t>(in.traddr.size(), 256));
  e[768] = in.sectype;
}

std::vector<uint8_t> DiscoveryLogImage(uint64_t genctr, const std::vector<Entry>& entries,
                                       uint16_t recfmt = 0) {
  std::vector<uint8_t> v(1024 + 1024 * entries.size(), 0);
  StoreLe64(&v[0], genctr);
  StoreLe64(&v[8], entries.size());
  StoreLe16(&v[16], recfmt);
  for (size_t i = 0; i < entries.size(); ++i) PutEntry(&v[1024 + 1024 * i], entries[i]);
  return v;
}

std::vector<Entry> ThreeEntries() {
  Entry nvme;
  Entry referral;
  referral.subtype = kSubtypeDiscoveryReferral;
  referral.subnqn = "nqn.2014-08.org.nvmexpress.discovery";
  referral.traddr = "fe80::1";
  referral.adrfam = kAdrfamIpv6;
  referral.trsvcid = "8009";
  referral.portid = 7;
  Entry current;
  current.subtype = kSubtypeCurrentDiscovery;
  current.subnqn = "nqn.2014-08.org.nvmexpress.discovery";
  current.trsvcid = "8009";
  current.eflags = 0x3;
  current.sectype = kTcpSectypeTls13;
  current.treq = 0x05;
  return {nvme, referral, current};
}

TEST(DiscoveryLog, KnownBytes) {
  std::vector<uint8_t> img = DiscoveryLogImage(42, ThreeEntries());
  // Field offsets inside an entry, checked on the image itself.
  EXPECT_EQ(img[1024 + 0], kTrtypeTcp);
  EXPECT_EQ(img[1024 + 2], kSubtypeNvme);
  EXPECT_EQ(img[2048 + 4], 7);
  EXPECT_EQ(img[1024 + 6], 0xFF);
  EXPECT_EQ(img[1024 + 32], '4');
  EXPECT_EQ(img[1024 + 256], 'n');
  EXPECT_EQ(img[1024 + 512], '1');

  ASSERT_OK_AND_ASSIGN(DiscoveryLog log, ParseDiscoveryLog(img.data(), img.size()));
  EXPECT_EQ(log.header.genctr, 42u);
  EXPECT_EQ(log.header.numrec, 3u);
  EXPECT_EQ(log.header.recfmt, 0);
  ASSERT_EQ(log.entries.size(), 3u);

  const DiscoveryEntry& e0 = log.entries[0];
  EXPECT_EQ(e0.trtype, kTrtypeTcp);
  EXPECT_EQ(e0.adrfam, kAdrfamIpv4);
  EXPECT_EQ(e0.subtype, kSubtypeNvme);
  EXPECT_EQ(e0.treq, 0);
  EXPECT_EQ(e0.portid, 1);
  EXPECT_EQ(e0.cntlid, 0xFFFF);
  EXPECT_EQ(e0.asqsz, 32);
  EXPECT_EQ(e0.eflags, 0);
  EXPECT_EQ(e0.trsvcid, "4420");
  EXPECT_EQ(e0.subnqn, "nqn.2026-01.io.test:subsys1");
  EXPECT_EQ(e0.traddr, "192.168.1.10");
  EXPECT_EQ(e0.tcp_sectype, kTcpSectypeNone);
  EXPECT_FALSE(e0.IsReferral());
  EXPECT_STREQ(SubtypeName(e0.subtype), "nvme subsystem");

  const DiscoveryEntry& e1 = log.entries[1];
  EXPECT_TRUE(e1.IsReferral());
  EXPECT_EQ(e1.portid, 7);
  EXPECT_EQ(e1.adrfam, kAdrfamIpv6);
  EXPECT_EQ(e1.traddr, "fe80::1");
  EXPECT_EQ(e1.trsvcid, "8009");
  EXPECT_EQ(e1.subnqn, "nqn.2014-08.org.nvmexpress.discovery");
  EXPECT_STREQ(SubtypeName(e1.subtype), "referral");

  const DiscoveryEntry& e2 = log.entries[2];
  EXPECT_FALSE(e2.IsReferral());
  EXPECT_EQ(e2.eflags, 3);
  EXPECT_EQ(e2.treq, 5);
  EXPECT_EQ(e2.tcp_sectype, kTcpSectypeTls13);
  EXPECT_STREQ(SubtypeName(e2.subtype), "current discovery subsystem");
}

TEST(DiscoveryLog, EmptyAndExtraBytes) {
  std::vector<uint8_t> img = DiscoveryLogImage(1, {});
  ASSERT_OK_AND_ASSIGN(DiscoveryLog log, ParseDiscoveryLog(img.data(), img.size()));
  EXPECT_TRUE(log.entries.empty());
  // Bytes beyond NUMREC entries are ignored, whatever they hold.
  img = DiscoveryLogImage(1, ThreeEntries());
  img.resize(img.size() + 2048, 0x01);
  ASSERT_OK_AND_ASSIGN(log, ParseDiscoveryLog(img.data(), img.size()));
  EXPECT_EQ(log.entries.size(), 3u);
}

TEST(DiscoveryLog, Names) {
  EXPECT_STREQ(TrtypeName(kTrtypeTcp), "tcp");
  EXPECT_STREQ(TrtypeName(kTrtypeRdma), "rdma");
  EXPECT_STREQ(TrtypeName(kTrtypeFc), "fc");
  EXPECT_STREQ(TrtypeName(kTrtypeLoop), "loop");
  EXPECT_STREQ(TrtypeName(0), "unknown");
  EXPECT_STREQ(AdrfamName(kAdrfamIpv4), "ipv4");
  EXPECT_STREQ(AdrfamName(kAdrfamIpv6), "ipv6");
  EXPECT_STREQ(AdrfamName(9), "unknown");
  EXPECT_STREQ(SubtypeName(0), "unknown");
  EXPECT_STREQ(SubtypeName(4), "unknown");
}

TEST(DiscoveryLog, RejectsMalformed) {
  struct Case {
    const char* name;
    std::function<void(std::vector<uint8_t>*)> mutate;
    const char* message;
  };
  const Case cases[] = {
      {"truncated_header", [](auto* v) { v->resize(1023); },
       "discovery log header is 1023 bytes, need 1024"},
      {"empty", [](auto* v) { v->clear(); }, "header is 0 bytes"},
      {"recfmt", [](auto* v) { StoreLe16(&(*v)[16], 1); }, "RECFMT is 1"},
      {"numrec_too_large", [](auto* v) { StoreLe64(&(*v)[8], 1025); },
       "NUMREC 1025 exceeds the limit of 1024"},
      {"numrec_huge", [](auto* v) { StoreLe64(&(*v)[8], ~uint64_t{0}); }, "exceeds the limit"},
      {"entries_truncated", [](auto* v) { v->resize(1024 + 2 * 1024 + 1023); },
       "NUMREC 3 needs 4096 bytes, got 4095"},
      {"numrec_beyond_data", [](auto* v) { StoreLe64(&(*v)[8], 4); }, "NUMREC 4 needs 5120"},
      {"traddr_control", [](auto* v) { (*v)[2048 + 512 + 3] = 0x07; },
       "entry 1 TRADDR contains byte 0x07 at offset 3"},
      {"traddr_non_ascii", [](auto* v) { (*v)[1024 + 512] = 0xC3; },
       "entry 0 TRADDR contains byte 0xc3"},
      {"trsvcid_control", [](auto* v) { (*v)[3072 + 32 + 1] = '\n'; },
       "entry 2 TRSVCID contains byte 0x0a at offset 1"},
      {"subnqn_del", [](auto* v) { (*v)[1024 + 256 + 4] = 0x7F; },
       "entry 0 SUBNQN contains byte 0x7f at offset 4"},
      // NUMREC beyond the records of the log: the controller zero-fills what follows them.
      {"entry_zeroes", [](auto* v) { std::fill(v->begin() + 2048, v->begin() + 3072, 0); },
       "entry 1 is all zeroes: NUMREC counts more records"},
      {"subnqn_empty",
       [](auto* v) { std::fill(v->begin() + 3072 + 256, v->begin() + 3072 + 512, 0); },
       "entry 2 has an empty SUBNQN"},
  };
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.name);
    std::vector<uint8_t> img = DiscoveryLogImage(5, ThreeEntries());
    tc.mutate(&img);
    EXPECT_THAT(ParseDiscoveryLog(img.data(), img.size()),
                StatusIs(absl::StatusCode::kDataLoss, HasSubstr(tc.message)));
  }
  EXPECT_THAT(ParseDiscoveryLog(nullptr, 4096), StatusIs(absl::StatusCode::kDataLoss));
}

TEST(DiscoveryLog, TextFieldsTrimmedAndUtf8Nqn) {
  Entry e;
  e.trsvcid = "  4420";
  e.subnqn = "nqn.2026-01.io.test:\xC3\xA9";
  e.traddr = std::string(256, 'a');  // full width, no padding
  std::vector<uint8_t> img = DiscoveryLogImage(1, {e});
  // NUL padding in TRSVCID works too.
  std::memset(&img[1024 + 32 + 6], 0, 26);
  ASSERT_OK_AND_ASSIGN(DiscoveryLog log, ParseDiscoveryLog(img.data(), img.size()));
  EXPECT_EQ(log.entries[0].trsvcid, "4420");
  EXPECT_EQ(log.entries[0].subnqn, "nqn.2026-01.io.test:\xC3\xA9");
  EXPECT_EQ(log.entries[0].traddr, std::string(256, 'a'));
}

// --- DiscoveryLogReader --------------------------------------------------------------------------

// A discovery controller answering Get Log Page from its current log image; bytes past the end read
// as zeroes (as Linux nvmet returns them). `before_read` may change the log between commands.
struct FakeDiscoveryController {
  std::vector<uint8_t> log;
  std::function<void(int read_index, FakeDiscoveryController*)> before_read;
  std::vector<LogRead> reads;

  std::vector<uint8_t> Read(const LogRead& r) {
    if (before_read) before_read(static_cast<int>(reads.size()), this);
    reads.push_back(r);
    std::vector<uint8_t> out(r.length, 0);
    for (uint64_t i = 0; i < r.length && r.offset + i < log.size(); ++i) out[i] = log[r.offset + i];
    return out;
  }
};

absl::Status Drive(DiscoveryLogReader* reader, FakeDiscoveryController* ctrl,
                   int max_reads = 1000) {
  for (int i = 0; i < max_reads && !reader->done(); ++i) {
    LogRead r = reader->NextRead();
    std::vector<uint8_t> data = ctrl->Read(r);
    RETURN_IF_ERROR(reader->OnData(data.data(), data.size()));
  }
  return reader->done() ? absl::OkStatus() : absl::InternalError("reader did not finish");
}

std::vector<std::pair<uint64_t, uint32_t>> Trace(const std::vector<LogRead>& reads) {
  std::vector<std::pair<uint64_t, uint32_t>> out;
  for (const LogRead& r : reads) out.emplace_back(r.offset, r.length);
  return out;
}

std::vector<Entry> NEntries(size_t n) {
  std::vector<Entry> v(n);
  for (size_t i = 0; i < n; ++i) v[i].portid = static_cast<uint16_t>(i);
  return v;
}

using P = std::pair<uint64_t, uint32_t>;

TEST(DiscoveryLogReader, EmptyLogIsOneRead) {
  FakeDiscoveryController ctrl{DiscoveryLogImage(9, {})};
  DiscoveryLogReader reader;
  EXPECT_EQ(reader.state(), DiscoveryLogReader::State::kReadHeader);
  ASSERT_THAT(Drive(&reader, &ctrl), IsOk());
  EXPECT_THAT(Trace(ctrl.reads), ElementsAre(P{0, 1024}));
  EXPECT_TRUE(reader.entries().empty());
  EXPECT_EQ(reader.generation(), 9u);
  EXPECT_EQ(reader.attempts(), 1);
  EXPECT_EQ(reader.NextRead().length, 0u);
}

TEST(DiscoveryLogReader, HeaderEntriesHeader) {
  FakeDiscoveryController ctrl{DiscoveryLogImage(3, ThreeEntries())};
  DiscoveryLogReader reader;
  ASSERT_THAT(Drive(&reader, &ctrl), IsOk());
  EXPECT_THAT(Trace(ctrl.reads), ElementsAre(P{0, 1024}, P{1024, 3072}, P{0, 1024}));
  ASSERT_EQ(reader.entries().size(), 3u);
  EXPECT_TRUE(reader.entries()[1].IsReferral());
  EXPECT_EQ(reader.entries()[0].traddr, "192.168.1.10");
  EXPECT_EQ(reader.generation(), 3u);
  EXPECT_STREQ(DiscoveryLogReader::ToString(reader.state()), "done");
}

TEST(DiscoveryLogReader, ChunkedReads) {
  // 100 entries with 64 KiB chunks: 64 + 36 entries.
  FakeDiscoveryController ctrl{DiscoveryLogImage(1, NEntries(100))};
  DiscoveryLogReader reader;
  ASSERT_THAT(Drive(&reader, &ctrl), IsOk());
  EXPECT_THAT(Trace(ctrl.reads),
              ElementsAre(P{0, 1024}, P{1024, 65536}, P{1024 + 65536, 36 * 1024}, P{0, 1024}));
  ASSERT_EQ(reader.entries().size(), 100u);
  EXPECT_EQ(reader.entries()[99].portid, 99);

  // 3 entries in 2 KiB chunks.
  FakeDiscoveryController small{DiscoveryLogImage(1, ThreeEntries())};
  ASSERT_OK_AND_ASSIGN(DiscoveryLogReader r2,
                       DiscoveryLogReader::Create({.max_chunk_bytes = 2048}));
  ASSERT_THAT(Drive(&r2, &small), IsOk());
  EXPECT_THAT(Trace(small.reads),
              ElementsAre(P{0, 1024}, P{1024, 2048}, P{3072, 1024}, P{0, 1024}));
  EXPECT_EQ(r2.entries().size(), 3u);
}

TEST(DiscoveryLogReader, GenerationChangeRereads) {
  // The log gains a fourth entry after the entries were read: the verification header shows
  // generation 4, so the reader reads the (new) entries again and verifies once more.
  FakeDiscoveryController ctrl{DiscoveryLogImage(3, ThreeEntries())};
  ctrl.before_read = [](int i, FakeDiscoveryController* c) {
    if (i == 2) {
      auto entries = ThreeEntries();
      entries.push_back(Entry{});
      entries.back().traddr = "10.0.0.4";
      c->log = DiscoveryLogImage(4, entries);
    }
  };
  DiscoveryLogReader reader;
  ASSERT_THAT(Drive(&reader, &ctrl), IsOk());
  EXPECT_THAT(Trace(ctrl.reads),
              ElementsAre(P{0, 1024}, P{1024, 3072}, P{0, 1024}, P{1024, 4096}, P{0, 1024}));
  EXPECT_EQ(reader.attempts(), 2);
  EXPECT_EQ(reader.generation(), 4u);
  ASSERT_EQ(reader.entries().size(), 4u);
  EXPECT_EQ(reader.entries()[3].traddr, "10.0.0.4");
}

TEST(DiscoveryLogReader, ChangeBetweenChunksRereads) {
  // The log changes between two entry chunks: the mixed entries are thrown away.
  FakeDiscoveryController ctrl{DiscoveryLogImage(1, NEntries(4))};
  ctrl.before_read = [](int i, FakeDiscoveryController* c) {
    if (i == 2) {
      auto entries = NEntries(2);
      entries[1].traddr = "10.9.9.9";
      c->log = DiscoveryLogImage(2, entries);
    }
  };
  ASSERT_OK_AND_ASSIGN(DiscoveryLogReader reader,
                       DiscoveryLogReader::Create({.max_chunk_bytes = 2048}));
  ASSERT_THAT(Drive(&reader, &ctrl), IsOk());
  EXPECT_THAT(Trace(ctrl.reads), ElementsAre(P{0, 1024}, P{1024, 2048}, P{3072, 2048}, P{0, 1024},
                                             P{1024, 2048}, P{0, 1024}));
  ASSERT_EQ(reader.entries().size(), 2u);
  EXPECT_EQ(reader.entries()[1].traddr, "10.9.9.9");
  EXPECT_EQ(reader.generation(), 2u);
}

TEST(DiscoveryLogReader, ChangingForeverFails) {
  FakeDiscoveryController ctrl{DiscoveryLogImage(0, ThreeEntries())};
  ctrl.before_read = [](int, FakeDiscoveryController* c) {
    StoreLe64(&c->log[0], LoadLe64(&c->log[0]) + 1);  // every command sees a new generation
  };
  DiscoveryLogReader reader;
  EXPECT_THAT(Drive(&reader, &ctrl),
              StatusIs(absl::StatusCode::kUnavailable,
                       HasSubstr("discovery log keeps changing: generation 21 after 10 attempts")));
  EXPECT_TRUE(reader.failed());
  EXPECT_EQ(reader.attempts(), 10);
  EXPECT_EQ(ctrl.reads.size(), 1u + 10 * 2);
  EXPECT_THAT(reader.status(), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_TRUE(reader.entries().empty());
  EXPECT_EQ(reader.NextRead().length, 0u);
  uint8_t byte = 0;
  EXPECT_THAT(reader.OnData(&byte, 0), StatusIs(absl::StatusCode::kFailedPrecondition));

  // Fewer attempts allowed.
  FakeDiscoveryController ctrl2 = ctrl;
  ctrl2.reads.clear();
  ASSERT_OK_AND_ASSIGN(DiscoveryLogReader r2, DiscoveryLogReader::Create({.max_attempts = 2}));
  EXPECT_THAT(Drive(&r2, &ctrl2), StatusIs(absl::StatusCode::kUnavailable, HasSubstr("after 2")));
  EXPECT_EQ(ctrl2.reads.size(), 5u);
}

TEST(DiscoveryLogReader, NumrecChangeWithoutGenerationFails) {
  FakeDiscoveryController ctrl{DiscoveryLogImage(7, ThreeEntries())};
  ctrl.before_read = [](int i, FakeDiscoveryController* c) {
    if (i == 2) StoreLe64(&c->log[8], 2);
  };
  DiscoveryLogReader reader;
  EXPECT_THAT(Drive(&reader, &ctrl),
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr("NUMREC changed from 3 to 2 within generation 7")));
  EXPECT_TRUE(reader.failed());
}

TEST(DiscoveryLogReader, RejectsMalformedLogs) {
  struct Case {
    const char* name;
    std::vector<uint8_t> log;
    DiscoveryLogReader::Options options;
    absl::StatusCode code;
    const char* message;
  };
  std::vector<uint8_t> bad_entry = DiscoveryLogImage(1, ThreeEntries());
  bad_entry[1024 + 512] = 0x01;
  std::vector<uint8_t> too_many = DiscoveryLogImage(1, {});
  StoreLe64(&too_many[8], 1025);
  const Case cases[] = {
      {"recfmt",
       DiscoveryLogImage(1, ThreeEntries(), 2),
       {},
       absl::StatusCode::kDataLoss,
       "RECFMT is 2"},
      {"numrec_above_max",
       too_many,
       {},
       absl::StatusCode::kDataLoss,
       "NUMREC 1025 exceeds the limit of 1024"},
      {"numrec_above_option",
       DiscoveryLogImage(1, ThreeEntries()),
       {.max_records = 2},
       absl::StatusCode::kDataLoss,
       "NUMREC 3 exceeds the limit of 2"},
      {"bad_entry",
       bad_entry,
       {},
       absl::StatusCode::kDataLoss,
       "entry 0 TRADDR contains byte 0x01"},
  };
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.name);
    FakeDiscoveryController ctrl{tc.log};
    ASSERT_OK_AND_ASSIGN(DiscoveryLogReader reader, DiscoveryLogReader::Create(tc.options));
    EXPECT_THAT(Drive(&reader, &ctrl), StatusIs(tc.code, HasSubstr(tc.message)));
    EXPECT_TRUE(reader.failed());
    EXPECT_THAT(reader.status(), StatusIs(tc.code));
  }
}

TEST(DiscoveryLogReader, RejectsWrongLengthAndBadOptions) {
  DiscoveryLogReader reader;
  std::vector<uint8_t> data(1023);
  EXPECT_THAT(reader.OnData(data.data(), data.size()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("read at offset 0 expects 1024 bytes, got 1023")));
  EXPECT_THAT(reader.OnData(nullptr, 1024), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_FALSE(reader.failed());  // a caller mistake does not poison the reader

  struct Case {
    const char* name;
    DiscoveryLogReader::Options options;
    const char* message;
  };
  const Case cases[] = {
      {"chunk_zero", {.max_chunk_bytes = 0}, "max_chunk_bytes 0 is not a positive multiple"},
      {"chunk_512", {.max_chunk_bytes = 512}, "max_chunk_bytes 512"},
      {"chunk_1028", {.max_chunk_bytes = 1028}, "max_chunk_bytes 1028"},
      {"attempts_zero", {.max_attempts = 0}, "max_attempts 0 is below 1"},
      {"records", {.max_records = 1025}, "max_records 1025 exceeds 1024"},
  };
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.name);
    EXPECT_THAT(DiscoveryLogReader::Create(tc.options),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(tc.message)));
  }
}

// --- ANA log (Base 2.0 Figures 230, 231) ---------------------------------------------------------

struct Group {
  uint32_t grpid;
  uint8_t state;
  std::vector<uint32_t> nsids;
  uint64_t chgcnt = 0;
  // NNSIDs to write if not nsids.size() (for malformed logs).
  std::optional<uint32_t> nnsids = std::nullopt;
};

std::vector<uint8_t> AnaLogImage(uint64_t chgcnt, const std::vector<Group>& groups,
                                 bool with_nsids = true) {
  std::vector<uint8_t> v(16, 0);
  StoreLe64(&v[0], chgcnt);
  StoreLe16(&v[8], static_cast<uint16_t>(groups.size()));
  for (const Group& g : groups) {
    size_t off = v.size();
    v.resize(off + 32, 0);
    StoreLe32(&v[off + 0], g.grpid);
    StoreLe32(&v[off + 4], g.nnsids.value_or(static_cast<uint32_t>(g.nsids.size())));
    StoreLe64(&v[off + 8], g.chgcnt);
    v[off + 16] = g.state;
    if (!with_nsids) continue;
    for (uint32_t nsid : g.nsids) {
      size_t at = v.size();
      v.resize(at + 4);
      StoreLe32(&v[at], nsid);
    }
  }
  return v;
}

TEST(AnaLog, KnownBytes) {
  std::vector<uint8_t> img = AnaLogImage(
      77, {{1, kAnaOptimized, {1, 2, 3}, 5}, {2, kAnaInaccessible, {}, 6}, {9, kAnaChange, {10}}});
  // Offsets: header 16, group 1 at 16 (NSIDs at 48), group 2 at 60, group 9 at 92 (NSIDs at 124).
  EXPECT_EQ(img.size(), 16u + 32 + 12 + 32 + 32 + 4);
  EXPECT_EQ(img[16 + 16], kAnaOptimized);
  EXPECT_EQ(img[48], 1);
  EXPECT_EQ(img[60], 2);
  EXPECT_EQ(img[92 + 16], kAnaChange);
  EXPECT_EQ(img[124], 10);

  ASSERT_OK_AND_ASSIGN(AnaLog log, ParseAnaLog(img.data(), img.size()));
  EXPECT_EQ(log.chgcnt, 77u);
  ASSERT_EQ(log.groups.size(), 3u);
  EXPECT_EQ(log.groups[0].grpid, 1u);
  EXPECT_EQ(log.groups[0].nnsids, 3u);
  EXPECT_EQ(log.groups[0].chgcnt, 5u);
  EXPECT_EQ(log.groups[0].state, kAnaOptimized);
  EXPECT_THAT(log.groups[0].nsids, ElementsAre(1u, 2u, 3u));
  EXPECT_EQ(log.groups[1].grpid, 2u);
  EXPECT_EQ(log.groups[1].state, kAnaInaccessible);
  EXPECT_TRUE(log.groups[1].nsids.empty());
  EXPECT_EQ(log.groups[1].chgcnt, 6u);
  EXPECT_EQ(log.groups[2].grpid, 9u);
  EXPECT_THAT(log.groups[2].nsids, ElementsAre(10u));

  // Trailing bytes (a buffer sized by AnaLogMaxBytes) are ignored.
  img.resize(AnaLogMaxBytes(16, 64), 0xEE);
  ASSERT_OK_AND_ASSIGN(log, ParseAnaLog(img.data(), img.size()));
  EXPECT_EQ(log.groups.size(), 3u);
}

TEST(AnaLog, ReturnGroupsOnly) {
  // With RGO the descriptors are back to back; NNSIDs is reported but no NSIDs follow.
  std::vector<uint8_t> img =
      AnaLogImage(3, {{1, kAnaNonOptimized, {}, 0, 40}, {2, kAnaPersistentLoss, {}, 0, 7}}, false);
  EXPECT_EQ(img.size(), 16u + 64);
  ASSERT_OK_AND_ASSIGN(AnaLog log, ParseAnaLog(img.data(), img.size(), /*with_nsids=*/false));
  ASSERT_EQ(log.groups.size(), 2u);
  EXPECT_EQ(log.groups[0].nnsids, 40u);
  EXPECT_TRUE(log.groups[0].nsids.empty());
  EXPECT_EQ(log.groups[1].grpid, 2u);
  EXPECT_EQ(log.groups[1].state, kAnaPersistentLoss);
  // The same bytes read as a full log: group 1's 40 NSIDs overflow the buffer.
  EXPECT_THAT(ParseAnaLog(img.data(), img.size()),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("group 1 lists 40 NSIDs")));
}

TEST(AnaLog, EmptyLog) {
  std::vector<uint8_t> img = AnaLogImage(0, {});
  ASSERT_OK_AND_ASSIGN(AnaLog log, ParseAnaLog(img.data(), img.size()));
  EXPECT_TRUE(log.groups.empty());
}

TEST(AnaLog, StateNames) {
  EXPECT_STREQ(AnaStateName(kAnaOptimized), "optimized");
  EXPECT_STREQ(AnaStateName(kAnaNonOptimized), "non-optimized");
  EXPECT_STREQ(AnaStateName(kAnaInaccessible), "inaccessible");
  EXPECT_STREQ(AnaStateName(kAnaPersistentLoss), "persistent-loss");
  EXPECT_STREQ(AnaStateName(kAnaChange), "change");
  EXPECT_STREQ(AnaStateName(0), "invalid");
  EXPECT_STREQ(AnaStateName(5), "invalid");
}

TEST(AnaLog, MaxBytes) {
  EXPECT_EQ(AnaLogMaxBytes(0, 0), 16u);
  EXPECT_EQ(AnaLogMaxBytes(128, 1024), 16u + 128 * 32 + 1024 * 4);
  EXPECT_EQ(AnaLogMaxBytes(0xFFFFFFFF, 0xFFFFFFFF), 0xFFFFFFFFu);  // saturates
}

TEST(AnaLog, RejectsMalformed) {
  struct Case {
    const char* name;
    std::vector<uint8_t> bytes;
    bool with_nsids;
    const char* message;
  };
  auto truncate = [](std::vector<uint8_t> v, size_t n) {
    v.resize(n);
    return v;
  };
  auto with_ngrps = [](std::vector<uint8_t> v, uint16_t ngrps) {
    StoreLe16(&v[8], ngrps);
    return v;
  };
  const std::vector<uint8_t> good =
      AnaLogImage(1, {{1, kAnaOptimized, {1, 2}}, {2, kAnaChange, {3}}});
  const Case cases[] = {
      {"no_header", truncate(good, 15), true, "ANA log is 15 bytes, need 16"},
      {"null", {}, true, "ANA log is 0 bytes"},
      {"first_descriptor_truncated", truncate(good, 16 + 31), true,
       "group descriptor 0 of 2 at offset 16 is truncated (31 bytes left, need 32)"},
      {"nsids_truncated", truncate(good, 16 + 32 + 7), true,
       "group 1 lists 2 NSIDs (8 bytes) but only 7 bytes remain"},
      {"second_descriptor_truncated", truncate(good, 16 + 40 + 20), true,
       "group descriptor 1 of 2 at offset 56 is truncated"},
      {"ngrps_too_large", with_ngrps(good, 3), true, "group descriptor 2 of 3 at offset 92"},
      {"ngrps_max", with_ngrps(good, 0xFFFF), true, "of 65535"},
      {"rgo_ngrps_too_large", with_ngrps(AnaLogImage(1, {{1, 1, {}}}, false), 2), false,
       "group descriptor 1 of 2 at offset 48 is truncated (0 bytes left"},
      {"nnsids_huge", AnaLogImage(1, {{1, 1, {5}, 0, 0xFFFFFFFF}}), true,
       "lists 4294967295 NSIDs (17179869180 bytes) but only 4 bytes remain"},
      {"state_0", AnaLogImage(1, {{1, 0, {1}}}), true, "group 1 has invalid ANA state 0"},
      {"state_5", AnaLogImage(1, {{4, 5, {1}}}), true, "group 4 has invalid ANA state 5"},
      {"state_0e", AnaLogImage(1, {{4, 0x0E, {1}}}), true, "invalid ANA state 14"},
      {"state_11", AnaLogImage(1, {{4, 0x11, {1}}}), true, "invalid ANA state 17"},
      {"state_rgo", AnaLogImage(1, {{4, 0xFF, {}}}, false), false, "invalid ANA state 255"},
      {"grpid_0", AnaLogImage(1, {{0, 1, {1}}}), true, "group descriptor 0 has ANAGRPID 0"},
      {"nsid_0", AnaLogImage(1, {{3, 1, {1, 0}}}), true, "group 3 NSID entry 1 is invalid (0)"},
      {"nsid_broadcast", AnaLogImage(1, {{3, 1, {0xFFFFFFFF}}}), true,
       "NSID entry 0 is invalid (4294967295)"},
      {"duplicate_group", AnaLogImage(1, {{3, 1, {1}}, {4, 1, {2}}, {3, 2, {3}}}), true,
       "lists group 3 twice"},
  };
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.name);
    EXPECT_THAT(
        ParseAnaLog(tc.bytes.empty() ? nullptr : tc.bytes.data(), tc.bytes.size(), tc.with_nsids),
        StatusIs(absl::StatusCode::kDataLoss, HasSubstr(tc.message)));
  }
}

}  // namespace
}  // namespace nvmf_ublk::nvme
