// libFuzzer target for the Identify and log page parsers (src/nvme/identify.h, log_pages.h): every
// byte they see comes from a remote target, so no input may crash them, read past the buffer, or
// return a value that breaks the invariants documented in the headers.
//
// Each input goes, whole, through every parser (libFuzzer's buffer is exactly `size` bytes, so ASan
// sees any over-read), then through the Identify parsers zero-padded to 4096 bytes, then drives a
// DiscoveryLogReader against a fake discovery controller whose log, chunk size and mid-read changes
// the input chooses.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "base/endian.h"
#include "base/log.h"
#include "nvme/identify.h"
#include "nvme/log_pages.h"

namespace nvmf_ublk::nvme {
namespace {

#define FUZZ_CHECK(cond) \
  if (!(cond)) __builtin_trap()

void CheckNamespace(const NamespaceInfo& ns) {
  if (ns.inactive()) return;
  FUZZ_CHECK(ns.lba_bytes >= 512 && ns.lba_bytes <= 65536);
  FUZZ_CHECK(ns.format_index <= ns.nlbaf && ns.nlbaf < 64);
  FUZZ_CHECK(ns.PhysicalBlockBytes() >= ns.lba_bytes);
}

void CheckIds(const NamespaceIds& ids) {
  std::string id = ids.StableId();
  FUZZ_CHECK(id.empty() || id.size() == 6 + 32 || id.size() == 4 + 16 || id.size() == 5 + 36);
}

void CheckAna(const AnaLog& log, bool with_nsids, size_t size) {
  FUZZ_CHECK(16 + 32 * log.groups.size() <= size);
  for (const AnaGroup& g : log.groups) {
    FUZZ_CHECK(g.grpid != 0);
    FUZZ_CHECK(std::string(AnaStateName(g.state)) != "invalid");
    FUZZ_CHECK(with_nsids ? g.nsids.size() == g.nnsids : g.nsids.empty());
  }
}

void CheckEntries(const std::vector<DiscoveryEntry>& entries) {
  FUZZ_CHECK(entries.size() <= kDiscoveryLogMaxRecords);
  for (const DiscoveryEntry& e : entries) {
    FUZZ_CHECK(e.trsvcid.size() <= 32 && e.subnqn.size() <= 256 && e.traddr.size() <= 256);
    for (char c : e.traddr) FUZZ_CHECK(static_cast<unsigned char>(c) >= 0x20 && c != 0x7F);
    (void)TrtypeName(e.trtype);
    (void)SubtypeName(e.subtype);
    (void)AdrfamName(e.adrfam);
  }
}

void ParseWhole(const uint8_t* data, size_t size) {
  if (auto log = ParseDiscoveryLog(data, size); log.ok()) {
    FUZZ_CHECK(size >= 1024 + 1024 * log->entries.size());
    CheckEntries(log->entries);
  }
  for (bool with_nsids : {true, false}) {
    if (auto log = ParseAnaLog(data, size, with_nsids); log.ok()) CheckAna(*log, with_nsids, size);
  }
  if (auto ids = ParseNamespaceIdDescriptors(data, size); ids.ok()) CheckIds(*ids);
  if (auto list = ParseActiveNamespaceList(data, size); list.ok()) {
    FUZZ_CHECK(std::is_sorted(list->begin(), list->end()));
    FUZZ_CHECK(list->size() <= size / 4);
  }
  (void)ParseActiveNamespaceList(data, size & ~size_t{3});
  if (auto c = ParseIdentifyController(data, size); c.ok()) {
    (void)MaxTransferBytes(*c, 4096);
    (void)c->InCapsuleDataBytes();
  }
  if (auto ns = ParseIdentifyNamespace(data, size); ns.ok()) CheckNamespace(*ns);
}

void ParsePadded(const uint8_t* data, size_t size) {
  std::vector<uint8_t> page(kIdentifyDataSize, 0);
  std::memcpy(page.data(), data, std::min(size, page.size()));
  if (auto c = ParseIdentifyController(page.data(), page.size()); c.ok()) {
    (void)c->IsDiscoveryController();
    for (uint32_t mps : {4096u, 65536u, 1u << 27}) (void)MaxTransferBytes(*c, mps);
    FUZZ_CHECK(ParseIdentifyControllerNvm(page.data(), page.size(), &*c).ok());
  }
  if (auto ns = ParseIdentifyNamespace(page.data(), page.size()); ns.ok()) {
    CheckNamespace(*ns);
    CheckIds(NamespaceIdsFromIdentify(*ns));
  }
  if (auto ids = ParseNamespaceIdDescriptors(page.data(), page.size()); ids.ok()) CheckIds(*ids);
  (void)ParseActiveNamespaceList(page.data(), page.size());
}

// A discovery controller serving Get Log Page from `log` (zeroes past its end); between commands
// the input may bump GENCTR, flip a byte, or truncate the log, and the host may hand back a wrong
// length.
void DriveReader(FuzzedDataProvider& in) {
  DiscoveryLogReader::Options options;
  options.max_chunk_bytes = 1024 * in.ConsumeIntegralInRange<uint32_t>(1, 80);
  options.max_attempts = in.ConsumeIntegralInRange<int>(1, 12);
  options.max_records = in.ConsumeIntegralInRange<uint64_t>(0, kDiscoveryLogMaxRecords + 1);
  auto created = DiscoveryLogReader::Create(options);
  if (!created.ok()) {
    FUZZ_CHECK(options.max_records > kDiscoveryLogMaxRecords);
    return;
  }
  DiscoveryLogReader reader = std::move(created).value();
  std::vector<uint8_t> log = in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(0, 16384));
  // Let small inputs still describe many records: NUMREC from the input, entries mostly zero.
  if (log.size() >= 18 && in.ConsumeBool()) {
    StoreLe64(&log[8], in.ConsumeIntegralInRange<uint64_t>(0, 1100));  // NUMREC
    StoreLe16(&log[16], 0);                                            // RECFMT
  }
  for (int step = 0; step < 256 && !reader.done() && !reader.failed(); ++step) {
    const DiscoveryLogReader::LogRead r = reader.NextRead();
    FUZZ_CHECK(r.length > 0 && r.length % 1024 == 0 && r.offset % 1024 == 0);
    FUZZ_CHECK(r.length <= options.max_chunk_bytes || r.offset == 0);
    switch (in.ConsumeIntegralInRange<int>(0, 7)) {
      case 0:
        if (log.size() >= 8) StoreLe64(log.data(), LoadLe64(log.data()) + 1);
        break;
      case 1:
        if (!log.empty()) log[in.ConsumeIntegralInRange<size_t>(0, log.size() - 1)] ^= 0x5A;
        break;
      case 2:
        log.resize(in.ConsumeIntegralInRange<size_t>(0, log.size()));
        break;
      case 3: {
        // A host bug: the wrong length must be refused without changing the reader.
        std::vector<uint8_t> wrong(r.length + 4, 0);
        size_t len = in.ConsumeBool() ? r.length + 4 : r.length - 4;
        FUZZ_CHECK(!reader.OnData(wrong.data(), len).ok());
        FUZZ_CHECK(!reader.failed());
        continue;
      }
      default:
        break;
    }
    std::vector<uint8_t> out(r.length, 0);
    if (r.offset < log.size()) {
      std::memcpy(out.data(), log.data() + r.offset,
                  std::min<size_t>(r.length, log.size() - r.offset));
    }
    absl::Status s = reader.OnData(out.data(), out.size());
    FUZZ_CHECK(s.ok() != reader.failed());
    if (!s.ok())
      FUZZ_CHECK(s.code() == absl::StatusCode::kDataLoss ||
                 s.code() == absl::StatusCode::kUnavailable);
    if (in.remaining_bytes() == 0 && step > 64) break;
  }
  FUZZ_CHECK(reader.attempts() <= options.max_attempts);
  if (reader.done()) {
    FUZZ_CHECK(reader.entries().size() <= options.max_records);
    CheckEntries(reader.entries());
  }
}

}  // namespace
}  // namespace nvmf_ublk::nvme

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // The reader logs each generation change; at fuzzing speed that is only noise.
  nvmf_ublk::SetMinLogLevel(nvmf_ublk::LogLevel::kError);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace nvmf_ublk::nvme;  // NOLINT
  ParseWhole(data, size);
  ParsePadded(data, size);
  FuzzedDataProvider in(data, size);
  DriveReader(in);
  return 0;
}
