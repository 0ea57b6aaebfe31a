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
  return cut_after == 0 && delay_ms == 0 && drop_every == 0 && corrupt_digest == 0 &&
         term_req == 0 && error_count == 0 && !cpda && !maxh2cdata && !r2t_chunk && !max_r2t;
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
