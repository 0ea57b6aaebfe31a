#include "subsystem.h"

#include <algorithm>
#include <cstring>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "auth/dhchap_key.h"

namespace nvmf_ublk::target {
namespace {

// 64-bit FNV-1a followed by a splitmix64 finalizer: cheap, stable, well mixed.
uint64_t Hash64(std::string_view text, uint32_t nsid, uint64_t seed) {
  uint64_t h = 0xcbf29ce484222325ull ^ seed;
  auto mix = [&h](uint8_t b) {
    h ^= b;
    h *= 0x100000001b3ull;
  };
  for (char c : text) mix(static_cast<uint8_t>(c));
  for (int i = 0; i < 4; ++i) mix(static_cast<uint8_t>(nsid >> (8 * i)));
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return h;
}

std::array<uint8_t, 16> Hash128(std::string_view text, uint32_t nsid, uint64_t seed) {
  std::array<uint8_t, 16> out;
  const uint64_t a = Hash64(text, nsid, seed), b = Hash64(text, nsid, seed + 0x9e3779b97f4a7c15ull);
  for (int i = 0; i < 8; ++i) {
    out[i] = static_cast<uint8_t>(a >> (56 - 8 * i));
    out[8 + i] = static_cast<uint8_t>(b >> (56 - 8 * i));
  }
  return out;
}

uint32_t Log2(uint32_t v) {
  uint32_t s = 0;
  while ((1u << s) < v) ++s;
  return s;
}

}  // namespace

std::array<uint8_t, 16> DeriveNguid(std::string_view nqn, uint32_t nsid) {
  return Hash128(nqn, nsid, 1);
}

std::array<uint8_t, 16> DeriveUuid(std::string_view nqn, uint32_t nsid) {
  std::array<uint8_t, 16> u = Hash128(nqn, nsid, 2);
  u[6] = static_cast<uint8_t>((u[6] & 0x0F) | 0x80);  // version 8
  u[8] = static_cast<uint8_t>((u[8] & 0x3F) | 0x80);  // RFC 4122 variant
  return u;
}

std::string DeriveSerial(std::string_view nqn) {
  return absl::StrFormat("NU%016x", Hash64(nqn, 0, 3) >> 8);
}

absl::Status ValidateNqn(std::string_view nqn) {
  const std::string n(nqn);
  if (n.empty() || n.size() > nvme::kNqnMaxLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("NQN '", n, "' must have 1..", nvme::kNqnMaxLength, " bytes"));
  }
  if (n.rfind("nqn.", 0) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("NQN '", n, "' does not start with 'nqn.'"));
  }
  for (char c : n) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
      return absl::InvalidArgumentError("NQN contains a control character");
    }
  }
  return absl::OkStatus();
}

Namespace::Namespace(uint32_t nsid, uint32_t block_size, uint32_t ana_group,
                     std::array<uint8_t, 16> nguid, std::array<uint8_t, 16> uuid,
                     std::optional<std::array<uint8_t, 8>> eui64, std::unique_ptr<Backend> backend)
    : nsid_(nsid),
      block_size_(block_size),
      lba_shift_(Log2(block_size)),
      blocks_(backend->size_bytes() / block_size),
      ana_group_(ana_group),
      nguid_(nguid),
      uuid_(uuid),
      eui64_(eui64),
      backend_(std::move(backend)) {}

NamespaceCounters Namespace::counters() const {
  NamespaceCounters c;
  c.reads = counters_.reads.load();
  c.writes = counters_.writes.load();
  c.fua_writes = counters_.fua_writes.load();
  c.flushes = counters_.flushes.load();
  c.write_zeroes = counters_.write_zeroes.load();
  c.deallocates = counters_.deallocates.load();
  c.bytes_read = counters_.bytes_read.load();
  c.bytes_written = counters_.bytes_written.load();
  return c;
}

absl::StatusOr<std::unique_ptr<Subsystem>> Subsystem::Create(const SubsystemConfig& config,
                                                             size_t num_ports) {
  if (absl::Status s = ValidateNqn(config.nqn); !s.ok()) return s;
  if (config.nqn == nvme::kDiscoveryNqn) {
    return absl::InvalidArgumentError("the discovery NQN cannot be configured as a subsystem");
  }
  auto sub = std::unique_ptr<Subsystem>(new Subsystem());
  sub->nqn_ = config.nqn;
  sub->serial_ = config.serial.empty() ? DeriveSerial(config.nqn) : config.serial;
  if (sub->serial_.size() > 20) {
    return absl::InvalidArgumentError(absl::StrCat("serial '", sub->serial_, "' exceeds 20 bytes"));
  }
  sub->model_ = config.model.substr(0, 40);
  for (const std::string& host : config.allowed_hosts) {
    if (absl::Status s = ValidateNqn(host); !s.ok()) return s;
  }
  sub->allowed_hosts_ = config.allowed_hosts;
  for (const HostAuthConfig& h : config.host_auth) {
    if (absl::Status s = ValidateNqn(h.hostnqn); !s.ok()) return s;
    auto c = std::make_shared<auth::DhchapControllerConfig>();
    auto key = auth::ParseDhchapKey(h.key);
    if (!key.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(config.nqn, ": key of host ", h.hostnqn, ": ", key.status().message()));
    }
    c->host_key = std::move(*key);
    if (!h.ctrl_key.empty()) {
      auto ck = auth::ParseDhchapKey(h.ctrl_key);
      if (!ck.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(config.nqn, ": controller key for host ",
                                                       h.hostnqn, ": ", ck.status().message()));
      }
      c->ctrl_key = std::move(*ck);
    }
    if (!h.hashes.empty()) {
      c->hashes.clear();
      for (uint8_t id : h.hashes) {
        if (auth::HashLength(static_cast<auth::HashId>(id)) == 0) {
          return absl::InvalidArgumentError(absl::StrCat("unknown hash ID ", id));
        }
        c->hashes.push_back(static_cast<auth::HashId>(id));
      }
    }
    if (!h.dhgroups.empty()) {
      c->dhgroups.clear();
      for (uint8_t id : h.dhgroups) {
        if (!auth::KnownDhGroup(id))
          return absl::InvalidArgumentError(absl::StrCat("unknown DH group ", id));
        c->dhgroups.push_back(static_cast<auth::DhGroup>(id));
      }
    }
    sub->auth_[h.hostnqn] = std::move(c);
  }
  for (size_t p : config.ports) {
    if (p >= num_ports) {
      return absl::InvalidArgumentError(
          absl::StrCat(config.nqn, ": port index ", p, " but only ", num_ports, " ports"));
    }
  }
  sub->ports_ = config.ports;

  std::set<uint32_t> used;
  for (const NamespaceConfig& ns : config.namespaces) {
    if (ns.nsid != 0) used.insert(ns.nsid);
  }
  uint32_t next = 1;
  std::set<uint32_t> seen;
  for (const NamespaceConfig& ns : config.namespaces) {
    uint32_t nsid = ns.nsid;
    if (nsid == 0) {
      while (used.count(next)) ++next;
      nsid = next++;
      used.insert(nsid);
    }
    const std::string where = absl::StrCat(config.nqn, " namespace ", nsid);
    if (nsid == 0xFFFFFFFF || !seen.insert(nsid).second) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": NSID invalid or used twice"));
    }
    const uint32_t bs = ns.block_size;
    if (bs != 512 && bs != 1024 && bs != 2048 && bs != 4096) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": block size ", bs, " (must be 512, 1024, 2048 or 4096)"));
    }
    if (ns.ana_group == 0) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": ANA group 0 is invalid"));
    }
    if (ns.kind != BackendKind::kFile && ns.size_bytes < bs) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": size ", ns.size_bytes, " is less than one block"));
    }
    std::unique_ptr<Backend> backend;
    switch (ns.kind) {
      case BackendKind::kRam: {
        auto b = MakeRamBackend(ns.size_bytes / bs * bs);
        if (!b.ok()) return b.status();
        backend = std::move(*b);
        break;
      }
      case BackendKind::kFile: {
        auto b = MakeFileBackend(ns.path, ns.size_bytes / bs * bs);
        if (!b.ok()) return b.status();
        backend = std::move(*b);
        if (backend->size_bytes() < bs) {
          return absl::InvalidArgumentError(absl::StrCat(where, ": ", ns.path, " is too small"));
        }
        break;
      }
      case BackendKind::kNull:
        backend = MakeNullBackend(ns.size_bytes / bs * bs);
        break;
    }
    sub->namespaces_.push_back(std::make_unique<Namespace>(
        nsid, bs, ns.ana_group, ns.nguid.value_or(DeriveNguid(config.nqn, nsid)),
        ns.uuid.value_or(DeriveUuid(config.nqn, nsid)), ns.eui64, std::move(backend)));
  }
  std::sort(sub->namespaces_.begin(), sub->namespaces_.end(),
            [](const auto& a, const auto& b) { return a->nsid() < b->nsid(); });
  return sub;
}

std::unique_ptr<Subsystem> Subsystem::CreateDiscovery() {
  auto sub = std::unique_ptr<Subsystem>(new Subsystem());
  sub->nqn_ = nvme::kDiscoveryNqn;
  sub->serial_ = DeriveSerial(sub->nqn_);
  sub->model_ = "nvmf-ublk test target discovery";
  sub->discovery_ = true;
  return sub;
}

const Namespace* Subsystem::FindNamespace(uint32_t nsid) const {
  auto it = std::lower_bound(namespaces_.begin(), namespaces_.end(), nsid,
                             [](const auto& ns, uint32_t id) { return ns->nsid() < id; });
  return it != namespaces_.end() && (*it)->nsid() == nsid ? it->get() : nullptr;
}

std::vector<uint32_t> Subsystem::AnaGroups() const {
  std::set<uint32_t> groups;
  for (const auto& ns : namespaces_) groups.insert(ns->ana_group());
  return {groups.begin(), groups.end()};
}

std::shared_ptr<const auth::DhchapControllerConfig> Subsystem::AuthFor(
    std::string_view hostnqn) const {
  auto it = auth_.find(hostnqn);
  return it == auth_.end() ? nullptr : it->second;
}

bool Subsystem::HostAllowed(std::string_view hostnqn) const {
  if (discovery_ || allowed_hosts_.empty()) return true;
  return std::find(allowed_hosts_.begin(), allowed_hosts_.end(), hostnqn) != allowed_hosts_.end();
}

bool Subsystem::OnPort(size_t port_index) const {
  return ports_.empty() || std::find(ports_.begin(), ports_.end(), port_index) != ports_.end();
}

}  // namespace nvmf_ublk::target
