#include "config.h"

#include <algorithm>
#include <cctype>

#include "absl/strings/str_cat.h"
#include "tcp/pdu.h"

namespace nvmf_ublk::target {

const char* ToString(AnaState state) {
  switch (state) {
    case AnaState::kOptimized:
      return "optimized";
    case AnaState::kNonOptimized:
      return "non-optimized";
    case AnaState::kInaccessible:
      return "inaccessible";
    case AnaState::kPersistentLoss:
      return "persistent-loss";
    case AnaState::kChange:
      return "change";
  }
  return "invalid";
}

std::optional<AnaState> ParseAnaState(const std::string& text) {
  std::string t = text;
  std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return std::tolower(c); });
  std::replace(t.begin(), t.end(), '_', '-');
  if (t == "optimized" || t == "opt") return AnaState::kOptimized;
  if (t == "non-optimized" || t == "nonoptimized" || t == "nonopt") return AnaState::kNonOptimized;
  if (t == "inaccessible") return AnaState::kInaccessible;
  if (t == "persistent-loss" || t == "persistentloss" || t == "loss") {
    return AnaState::kPersistentLoss;
  }
  if (t == "change" || t == "transition") return AnaState::kChange;
  return std::nullopt;
}

bool FaultConfig::empty() const {
  return cut_after == 0 && delay_ms == 0 && keep_alive_delay_ms == 0 && drop_every == 0 &&
         corrupt_digest == 0 && term_req == 0 && error_count == 0 && malice == Malice::kNone &&
         !cpda && !maxh2cdata && !r2t_chunk && !max_r2t;
}

namespace {
struct MaliceName {
  Malice kind;
  const char* name;
};
constexpr MaliceName kMaliceNames[] = {
    {Malice::kRespPlenBelowHlen, "resp-plen-below-hlen"},
    {Malice::kRespPlenWrong, "resp-plen-wrong"},
    {Malice::kRespHlenWrong, "resp-hlen-wrong"},
    {Malice::kCidUnknown, "cid-unknown"},
    {Malice::kCidNextGeneration, "cid-next-generation"},
    {Malice::kDuplicateResp, "duplicate-resp"},
    {Malice::kUnknownPduType, "unknown-pdu-type"},
    {Malice::kStallMidPdu, "stall-mid-pdu"},
    {Malice::kHeaderDigestBad, "header-digest-bad"},
    {Malice::kTermReqMidData, "term-req-mid-data"},
    {Malice::kC2HPlenHuge, "c2h-plen-huge"},
    {Malice::kC2HPdoInHeader, "c2h-pdo-in-header"},
    {Malice::kC2HPdoPastPlen, "c2h-pdo-past-plen"},
    {Malice::kC2HBeyondLength, "c2h-beyond-length"},
    {Malice::kC2HGap, "c2h-gap"},
    {Malice::kC2HOverlap, "c2h-overlap"},
    {Malice::kC2HOutOfOrder, "c2h-out-of-order"},
    {Malice::kC2HAfterResp, "c2h-after-resp"},
    {Malice::kC2HSuccessWithSqfc, "c2h-success-with-sqfc"},
    {Malice::kR2TOnRead, "r2t-on-read"},
    {Malice::kReadDoneEarly, "read-done-early"},
    {Malice::kC2HOnWrite, "c2h-on-write"},
    {Malice::kR2TPlenWrong, "r2t-plen-wrong"},
    {Malice::kR2TBeyondLength, "r2t-beyond-length"},
    {Malice::kR2TOverlap, "r2t-overlap"},
    {Malice::kR2TReusedTtag, "r2t-reused-ttag"},
    {Malice::kR2TTooMany, "r2t-too-many"},
    {Malice::kWriteDoneBeforeR2T, "write-done-before-r2t"},
    {Malice::kWriteDoneAfterHalf, "write-done-after-half"},
    {Malice::kIcRespPfv, "icresp-pfv"},
    {Malice::kIcRespCpda, "icresp-cpda"},
    {Malice::kIcRespMaxH2CSmall, "icresp-maxh2cdata-small"},
    {Malice::kIcRespMaxH2CUnaligned, "icresp-maxh2cdata-unaligned"},
    {Malice::kIdentifyNn0, "identify-nn-0"},
    {Malice::kIdentifyLbads40, "identify-lbads-40"},
    {Malice::kIdentifyNsze0, "identify-nsze-0"},
    {Malice::kDiscoveryNumrecBig, "discovery-numrec-big"},
    {Malice::kAnaNgrpsBig, "ana-ngrps-big"},
};
}  // namespace

const char* ToString(Malice m) {
  for (const MaliceName& n : kMaliceNames) {
    if (n.kind == m) return n.name;
  }
  return "none";
}

std::optional<Malice> ParseMalice(const std::string& text) {
  if (text == "none") return Malice::kNone;
  for (const MaliceName& n : kMaliceNames) {
    if (text == n.name) return n.kind;
  }
  return std::nullopt;
}

std::vector<Malice> AllMalice() {
  std::vector<Malice> all;
  for (const MaliceName& n : kMaliceNames) all.push_back(n.kind);
  return all;
}

MaliceTarget TargetOf(Malice m) {
  if (m >= Malice::kIdentifyNn0) return MaliceTarget::kAdminAnswer;
  if (m >= Malice::kIcRespPfv) return MaliceTarget::kIcResp;
  if (m >= Malice::kR2TPlenWrong) return MaliceTarget::kR2TWrite;
  if (m == Malice::kC2HOnWrite) return MaliceTarget::kWrite;
  if (m >= Malice::kC2HPlenHuge || m == Malice::kTermReqMidData) return MaliceTarget::kRead;
  return MaliceTarget::kAny;
}

namespace {

absl::Status CheckCpda(uint32_t cpda) {
  if (cpda > tcp::kMaxPda) {
    return absl::InvalidArgumentError(absl::StrCat("CPDA ", cpda, " is out of range (0..31)"));
  }
  return absl::OkStatus();
}

absl::Status CheckMaxH2CData(uint32_t v) {
  if (v < tcp::kMinMaxH2CData || v % 4 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("MAXH2CDATA ", v, " must be at least 4096 and a multiple of 4"));
  }
  return absl::OkStatus();
}

absl::Status CheckMaxR2t(uint32_t v) {
  if (v == 0) return absl::InvalidArgumentError("max R2Ts per command must be at least 1");
  return absl::OkStatus();
}

}  // namespace

absl::Status Validate(const TransportConfig& t) {
  if (absl::Status s = CheckCpda(t.cpda); !s.ok()) return s;
  if (absl::Status s = CheckMaxH2CData(t.maxh2cdata); !s.ok()) return s;
  if (absl::Status s = CheckMaxR2t(t.max_r2t); !s.ok()) return s;
  if (t.c2h_chunk < 4) {
    return absl::InvalidArgumentError(absl::StrCat("C2H chunk ", t.c2h_chunk, " is too small"));
  }
  return absl::OkStatus();
}

absl::Status Validate(const FaultConfig& f) {
  if (f.cpda) {
    if (absl::Status s = CheckCpda(*f.cpda); !s.ok()) return s;
  }
  if (f.maxh2cdata) {
    if (absl::Status s = CheckMaxH2CData(*f.maxh2cdata); !s.ok()) return s;
  }
  if (f.max_r2t) {
    if (absl::Status s = CheckMaxR2t(*f.max_r2t); !s.ok()) return s;
  }
  if (f.error_count > 0 && (f.error_status & 0x7FF) == 0) {
    return absl::InvalidArgumentError("an error fault needs a non-success status");
  }
  return absl::OkStatus();
}

}  // namespace nvmf_ublk::target
