// NVM command set I/O commands of a target connection (NVM Command Set 1.0 §3): Read, Write,
// Flush, Write Zeroes, Dataset Management; ANA enforcement (Base 2.0 ANA states).
#include <cstring>
#include <vector>

#include "base/endian.h"
#include "base/log.h"
#include "connection.h"
#include "controller.h"
#include "internal.h"
#include "target.h"

namespace nvmf_ublk::target {
namespace {

// Path related status for a namespace in `state`, or 0 when I/O is allowed.
uint16_t AnaStatus(AnaState state) {
  switch (state) {
    case AnaState::kOptimized:
    case AnaState::kNonOptimized:
      return 0;
    case AnaState::kInaccessible:
      return nvme::MakeStatus(nvme::kSctPath, nvme::kScAnaInaccessible);
    case AnaState::kPersistentLoss:
      return nvme::MakeStatus(nvme::kSctPath, nvme::kScAnaPersistentLoss);
    case AnaState::kChange:
      return nvme::MakeStatus(nvme::kSctPath, nvme::kScAnaTransition);
  }
  return 0;
}

}  // namespace

void Connection::ExecuteIo(Request& req) {
  const uint16_t dnr_lba = nvme::MakeStatus(nvme::kSctGeneric, nvme::kScLbaOutOfRange, true);
  const uint16_t dnr_len = nvme::MakeStatus(nvme::kSctGeneric, kScDataSglLengthInvalid, true);
  if (!ctrl_->enabled()) {
    req.status = nvme::MakeStatus(nvme::kSctGeneric, nvme::kScCommandSequenceError, true);
    return;
  }
  const auto opcode = static_cast<nvme::IoOpcode>(req.sqe.opcode);
  const uint32_t nsid = req.sqe.nsid.get();
  const Subsystem& sub = ctrl_->subsystem();

  if (opcode == nvme::IoOpcode::kFlush && nsid == 0xFFFFFFFF) {
    for (const auto& ns : sub.namespaces()) {
      if (AnaStatus(target_->AnaStateOf(port_index_, ns->ana_group())) != 0) continue;
      ns->mutable_counters().flushes++;
      if (ns->backend().Flush() < 0) {
        req.status = nvme::MakeStatus(nvme::kSctMedia, nvme::kScWriteFault);
      }
    }
    return;
  }
  const Namespace* ns = sub.FindNamespace(nsid);
  if (ns == nullptr) {
    req.status = nvme::MakeStatus(nvme::kSctGeneric, nvme::kScInvalidNamespace, true);
    return;
  }
  if (const uint16_t s = AnaStatus(target_->AnaStateOf(port_index_, ns->ana_group())); s != 0) {
    req.status = s;
    return;
  }
  Namespace::AtomicCounters& counters = ns->mutable_counters();
  Backend& backend = ns->backend();
  const uint64_t blocks = ns->blocks();
  const uint32_t shift = ns->lba_shift();
  auto in_range = [blocks](uint64_t slba, uint64_t nlb) {
    return slba < blocks && nlb <= blocks - slba;
  };
  const uint64_t slba = req.sqe.cdw10.get() | (uint64_t{req.sqe.cdw11.get()} << 32);
  const uint32_t cdw12 = req.sqe.cdw12.get();
  const uint64_t nlb = (cdw12 & 0xFFFF) + 1ull;

  switch (opcode) {
    case nvme::IoOpcode::kFlush:
      counters.flushes++;
      if (backend.Flush() < 0) req.status = nvme::MakeStatus(nvme::kSctMedia, nvme::kScWriteFault);
      return;
    case nvme::IoOpcode::kRead: {
      if (!in_range(slba, nlb)) {
        req.status = dnr_lba;
        return;
      }
      const uint64_t bytes = nlb << shift;
      if (bytes != req.xfer_len) {
        req.status = dnr_len;
        return;
      }
      req.data.resize(bytes);
      if (backend.Read(slba << shift, req.data.data(), bytes) < 0) {
        req.status = nvme::MakeStatus(nvme::kSctMedia, nvme::kScUnrecoveredReadError);
        return;
      }
      counters.reads++;
      counters.bytes_read += bytes;
      return;
    }
    case nvme::IoOpcode::kWrite: {
      if (!in_range(slba, nlb)) {
        req.status = dnr_lba;
        return;
      }
      const uint64_t bytes = nlb << shift;
      if (bytes != req.xfer_len || req.data.size() != bytes) {
        req.status = dnr_len;
        return;
      }
      const bool fua = cdw12 & nvme::kRwFua;
      if (backend.Write(slba << shift, req.data.data(), bytes) < 0 ||
          (fua && backend.Flush() < 0)) {
        req.status = nvme::MakeStatus(nvme::kSctMedia, nvme::kScWriteFault);
        return;
      }
      counters.writes++;
      if (fua) counters.fua_writes++;
      counters.bytes_written += bytes;
      return;
    }
    case nvme::IoOpcode::kWriteZeroes: {
      if (!in_range(slba, nlb)) {
        req.status = dnr_lba;
        return;
      }
      const bool deac = cdw12 & nvme::kWriteZeroesDeac;
      if (backend.WriteZeroes(slba << shift, nlb << shift, deac) < 0) {
        req.status = nvme::MakeStatus(nvme::kSctMedia, nvme::kScWriteFault);
        return;
      }
      counters.write_zeroes++;
      return;
    }
    case nvme::IoOpcode::kDatasetManagement: {
      const uint32_t nr = (req.sqe.cdw10.get() & 0xFF) + 1;
      if (req.data.size() < nr * sizeof(nvme::DsmRange)) {
        req.status = dnr_len;
        return;
      }
      if ((req.sqe.cdw11.get() & nvme::kDsmDeallocate) == 0) return;  // hints only: nothing to do
      std::vector<nvme::DsmRange> ranges(nr);
      std::memcpy(ranges.data(), req.data.data(), nr * sizeof(nvme::DsmRange));
      for (const nvme::DsmRange& r : ranges) {
        if (!in_range(r.slba.get(), r.nlb.get()) && r.nlb.get() != 0) {
          req.status = dnr_lba;
          return;
        }
      }
      for (const nvme::DsmRange& r : ranges) {
        if (r.nlb.get() == 0) continue;
        if (backend.WriteZeroes(r.slba.get() << shift, uint64_t{r.nlb.get()} << shift, true) < 0) {
          req.status = nvme::MakeStatus(nvme::kSctMedia, nvme::kScWriteFault);
          return;
        }
      }
      counters.deallocates++;
      return;
    }
    default:
      req.status = nvme::MakeStatus(nvme::kSctGeneric, nvme::kScInvalidOpcode, true);
      return;
  }
}

}  // namespace nvmf_ublk::target
