#include "target.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/status.h"
#include "connection.h"
#include "controller.h"

namespace nvmf_ublk::target {
namespace {

// Numeric address and family of a socket address; IPv4-mapped IPv6 addresses become IPv4.
std::pair<std::string, uint8_t> AddressOf(const sockaddr_storage& ss) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET6) {
    const auto* a6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    if (IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr)) {
      in_addr a4;
      std::memcpy(&a4, a6->sin6_addr.s6_addr + 12, 4);
      inet_ntop(AF_INET, &a4, buf, sizeof(buf));
      return {buf, 1};
    }
    inet_ntop(AF_INET6, &a6->sin6_addr, buf, sizeof(buf));
    return {buf, 2};
  }
  inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&ss)->sin_addr, buf, sizeof(buf));
  return {buf, 1};
}

uint16_t PortOf(const sockaddr_storage& ss) {
  return ss.ss_family == AF_INET6 ? ntohs(reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port)
                                  : ntohs(reinterpret_cast<const sockaddr_in*>(&ss)->sin_port);
}

std::string HostPort(const std::string& addr, uint16_t port) {
  return addr.find(':') != std::string::npos ? absl::StrCat("[", addr, "]:", port)
                                             : absl::StrCat(addr, ":", port);
}

absl::StatusOr<uint8_t> AdrfamOf(const std::string& address) {
  in6_addr a6;
  if (inet_pton(AF_INET, address.c_str(), &a6) == 1) return 1;
  if (inet_pton(AF_INET6, address.c_str(), &a6) == 1) return 2;
  return absl::InvalidArgumentError(
      absl::StrCat("'", address, "' is not a numeric IPv4 or IPv6 address"));
}

}  // namespace

bool FaultState::Take(std::atomic<uint64_t>& budget) {
  uint64_t v = budget.load();
  while (v > 0) {
    if (budget.compare_exchange_weak(v, v - 1)) return true;
  }
  return false;
}

Target::Target(TargetConfig config) : config_(std::move(config)) {}

Target::~Target() { Stop(); }

absl::StatusOr<std::vector<uint16_t>> Target::Start() {
  if (started_.exchange(true)) return absl::FailedPreconditionError("target already started");
  if (config_.ports.empty()) return absl::InvalidArgumentError("no listen port configured");
  RETURN_IF_ERROR(Validate(config_.transport));
  RETURN_IF_ERROR(Validate(config_.fault));
  for (const PortConfig& p : config_.ports) {
    if (p.transport) RETURN_IF_ERROR(Validate(*p.transport));
  }
  if (config_.queue_size < 2) return absl::InvalidArgumentError("queue size must be >= 2");
  if (config_.max_io_queues == 0) return absl::InvalidArgumentError("max I/O queues must be >= 1");
  for (const ReferralConfig& r : config_.referrals) RETURN_IF_ERROR(AdrfamOf(r.address).status());

  discovery_ = Subsystem::CreateDiscovery();
  ana_group_max_ = std::max<uint32_t>(config_.ana_group_max, 1);
  for (const SubsystemConfig& sc : config_.subsystems) {
    ASSIGN_OR_RETURN(std::unique_ptr<Subsystem> sub, Subsystem::Create(sc, config_.ports.size()));
    if (FindSubsystem(sub->nqn()) != nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("subsystem ", sub->nqn(), " given twice"));
    }
    for (uint32_t g : sub->AnaGroups()) ana_group_max_ = std::max(ana_group_max_, g);
    std::lock_guard<std::mutex> lock(mu_);
    subsystems_.push_back(std::move(sub));
  }
  if (ana_group_max_ > 0xFFFF) return absl::InvalidArgumentError("ANA group IDs above 65535");
  referrals_ = config_.referrals;

  for (const PortConfig& pc : config_.ports) {
    auto port = std::make_unique<Port>();
    port->config = pc;
    port->ana = std::make_unique<std::atomic<uint8_t>[]>(ana_group_max_ + 1);
    for (uint32_t g = 0; g <= ana_group_max_; ++g) {
      port->ana[g] = static_cast<uint8_t>(AnaState::kOptimized);
    }
    for (const auto& [g, state] : pc.ana_states) {
      if (g == 0 || g > ana_group_max_) {
        return absl::InvalidArgumentError(
            absl::StrCat("ANA group ", g, " outside 1..", ana_group_max_));
      }
      port->ana[g] = static_cast<uint8_t>(state);
    }
    port->ana_group_chgcnt.assign(ana_group_max_ + 1, 0);
    RETURN_IF_ERROR(BindPort(*port));
    ports_.push_back(std::move(port));
  }
  if (!config_.fault.empty()) global_fault_ = std::make_shared<FaultState>(config_.fault);
  any_fault_ = global_fault_ != nullptr;

  stop_fd_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!stop_fd_) return ErrnoToStatus(errno, "eventfd");
  for (size_t i = 0; i < ports_.size(); ++i) {
    ports_[i]->accept_thread = std::thread([this, i] { AcceptLoop(i); });
  }
  return ports();
}

absl::Status Target::BindPort(Port& port) {
  const PortConfig& pc = port.config;
  addrinfo hints{};
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const std::string service = std::to_string(pc.port);
  if (int rc = getaddrinfo(pc.address.c_str(), service.c_str(), &hints, &res); rc != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen address '", pc.address, "': ", gai_strerror(rc)));
  }
  const std::string where = HostPort(pc.address, pc.port);
  UniqueFd fd(socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) {
    freeaddrinfo(res);
    return ErrnoToStatus(errno, absl::StrCat("socket for ", where));
  }
  const int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  const int rc = bind(fd.get(), res->ai_addr, res->ai_addrlen);
  const int bind_errno = errno;
  freeaddrinfo(res);
  if (rc != 0) return ErrnoToStatus(bind_errno, absl::StrCat("bind ", where));
  if (listen(fd.get(), 128) != 0) return ErrnoToStatus(errno, absl::StrCat("listen ", where));
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getsockname(fd.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return ErrnoToStatus(errno, absl::StrCat("getsockname ", where));
  }
  port.bound_port = PortOf(ss);
  port.adrfam = ss.ss_family == AF_INET6 ? 2 : 1;
  if (ss.ss_family == AF_INET6) {
    port.wildcard = IN6_IS_ADDR_UNSPECIFIED(&reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr);
  } else {
    port.wildcard = reinterpret_cast<sockaddr_in*>(&ss)->sin_addr.s_addr == htonl(INADDR_ANY);
  }
  port.listen_fd = std::move(fd);
  NLOG(INFO) << "listening on " << HostPort(pc.address, port.bound_port);
  return absl::OkStatus();
}

void Target::AcceptLoop(size_t index) {
  Port& port = *ports_[index];
  while (!stopping_.load()) {
    pollfd fds[2] = {{port.listen_fd.get(), POLLIN, 0}, {stop_fd_.get(), POLLIN, 0}};
    if (poll(fds, 2, -1) < 0 && errno != EINTR) {
      NLOG(ERROR) << "poll on listen socket: " << strerror(errno);
      return;
    }
    if (stopping_.load()) return;
    if (!(fds[0].revents & POLLIN)) continue;
    sockaddr_storage peer{};
    socklen_t len = sizeof(peer);
    const int fd =
        accept4(port.listen_fd.get(), reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED) {
        NLOG(WARNING) << "accept: " << strerror(errno);
        poll(nullptr, 0, 10);  // e.g. EMFILE: do not spin
      }
      continue;
    }
    UniqueFd sock(fd);
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    sockaddr_storage local{};
    len = sizeof(local);
    getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len);
    auto [local_addr, local_fam] = AddressOf(local);
    const std::string peer_name = HostPort(AddressOf(peer).first, PortOf(peer));
    ReapConnections(false);
    stats_.connections++;
    auto conn = std::make_unique<Connection>(this, index, std::move(sock), local_addr, local_fam,
                                             peer_name);
    // Started before it is listed: a reaper that sees it done must also see its thread_ set.
    conn->Start();
    std::lock_guard<std::mutex> lock(mu_);
    conns_.push_back(std::move(conn));
  }
}

void Target::ReapConnections(bool all) {
  std::list<std::unique_ptr<Connection>> dead;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = conns_.begin(); it != conns_.end();) {
      auto next = std::next(it);
      if (all || (*it)->done()) dead.splice(dead.end(), conns_, it);
      it = next;
    }
  }
  if (all) {
    for (auto& c : dead) c->Shutdown();
  }
  for (auto& c : dead) c->Join();
}

void Target::Stop() {
  if (!started_.load() || stopping_.exchange(true)) return;
  if (stop_fd_) {
    const uint64_t one = 1;
    (void)!write(stop_fd_.get(), &one, sizeof(one));
  }
  for (auto& p : ports_) {
    if (p->accept_thread.joinable()) p->accept_thread.join();
    p->listen_fd.reset();
  }
  ReapConnections(true);
  std::lock_guard<std::mutex> lock(mu_);
  controllers_.clear();
}

std::vector<uint16_t> Target::ports() const {
  std::vector<uint16_t> out;
  for (const auto& p : ports_) out.push_back(p->bound_port);
  return out;
}

std::optional<size_t> Target::PortIndex(uint16_t tcp_port) const {
  for (size_t i = 0; i < ports_.size(); ++i) {
    if (ports_[i]->bound_port == tcp_port) return i;
  }
  for (size_t i = 0; i < ports_.size(); ++i) {
    if (ports_[i]->config.port == tcp_port && tcp_port != 0) return i;
  }
  return std::nullopt;
}

// --- ANA ---------------------------------------------------------------------------------------

absl::Status Target::SetAnaState(size_t port_index, uint32_t group, AnaState state) {
  if (!started_.load()) return absl::FailedPreconditionError("target not started");
  if (port_index >= ports_.size()) {
    return absl::InvalidArgumentError(absl::StrCat("no port index ", port_index));
  }
  if (group == 0 || group > ana_group_max_) {
    return absl::InvalidArgumentError(
        absl::StrCat("ANA group ", group, " outside 1..", ana_group_max_));
  }
  Port& port = *ports_[port_index];
  std::vector<std::shared_ptr<Controller>> notify;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto old = static_cast<AnaState>(port.ana[group].exchange(static_cast<uint8_t>(state)));
    if (old == state) return absl::OkStatus();
    ++port.ana_group_chgcnt[group];
    ++port.ana_chgcnt;
    NLOG(INFO) << "port " << port.bound_port << " ANA group " << group << ": " << ToString(old)
               << " -> " << ToString(state);
    for (const auto& [id, ctrl] : controllers_) {
      if (ctrl->port_index() == port_index && !ctrl->discovery()) notify.push_back(ctrl);
    }
  }
  for (const auto& ctrl : notify) {
    ctrl->NotifyEvent({nvme::kAerTypeNotice, nvme::kAerNoticeAnaChange,
                       static_cast<uint8_t>(nvme::LogPageId::kAna)},
                      nvme::kAecAnaChange);
  }
  return absl::OkStatus();
}

AnaState Target::GetAnaState(size_t port_index, uint32_t group) const {
  return AnaStateOf(port_index, group);
}

AnaState Target::AnaStateOf(size_t port_index, uint32_t group) const {
  if (port_index >= ports_.size() || group == 0 || group > ana_group_max_) {
    return AnaState::kOptimized;
  }
  return static_cast<AnaState>(ports_[port_index]->ana[group].load());
}

std::vector<uint8_t> Target::AnaLog(const Subsystem& subsystem, size_t port_index, bool rgo) const {
  std::vector<AnaGroupState> groups;
  uint64_t chgcnt;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const Port& port = *ports_[port_index];
    chgcnt = port.ana_chgcnt;
    for (uint32_t g : subsystem.AnaGroups()) {
      AnaGroupState s;
      s.grpid = g;
      s.state = static_cast<AnaState>(port.ana[g].load());
      s.chgcnt = port.ana_group_chgcnt[g];
      for (const auto& ns : subsystem.namespaces()) {
        if (ns->ana_group() == g) s.nsids.push_back(ns->nsid());
      }
      groups.push_back(std::move(s));
    }
  }
  return BuildAnaLog(chgcnt, groups, rgo);
}

// --- Faults and transport ----------------------------------------------------------------------

absl::Status Target::SetFault(const FaultConfig& fault, std::optional<size_t> port_index) {
  RETURN_IF_ERROR(Validate(fault));
  if (port_index && *port_index >= ports_.size()) {
    return absl::InvalidArgumentError(absl::StrCat("no port index ", *port_index));
  }
  auto state = fault.empty() ? nullptr : std::make_shared<FaultState>(fault);
  std::lock_guard<std::mutex> lock(fault_mu_);
  if (port_index) {
    ports_[*port_index]->fault = std::move(state);
  } else {
    global_fault_ = std::move(state);
  }
  bool any = global_fault_ != nullptr;
  for (const auto& p : ports_) any = any || p->fault != nullptr;
  any_fault_ = any;
  return absl::OkStatus();
}

void Target::ClearFaults() {
  std::lock_guard<std::mutex> lock(fault_mu_);
  global_fault_.reset();
  for (auto& p : ports_) p->fault.reset();
  any_fault_ = false;
}

std::shared_ptr<FaultState> Target::FaultFor(size_t port_index) const {
  if (!any_fault_.load(std::memory_order_relaxed)) return nullptr;
  std::lock_guard<std::mutex> lock(fault_mu_);
  if (ports_[port_index]->fault) return ports_[port_index]->fault;
  return global_fault_;
}

TransportConfig Target::TransportFor(size_t port_index) const {
  TransportConfig t = ports_[port_index]->config.transport.value_or(config_.transport);
  if (std::shared_ptr<FaultState> fs = FaultFor(port_index)) {
    const FaultConfig& f = fs->config;
    if (f.cpda) t.cpda = *f.cpda;
    if (f.maxh2cdata) t.maxh2cdata = *f.maxh2cdata;
    if (f.r2t_chunk) t.r2t_chunk = *f.r2t_chunk;
    if (f.max_r2t) t.max_r2t = *f.max_r2t;
  }
  return t;
}

// --- Subsystems, controllers, discovery ----------------------------------------------------------

const Subsystem* Target::FindSubsystem(std::string_view nqn) const {
  if (nqn == nvme::kDiscoveryNqn) return discovery_.get();
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& s : subsystems_) {
    if (s->nqn() == nqn) return s.get();
  }
  return nullptr;
}

std::shared_ptr<Controller> Target::CreateController(const Subsystem* subsystem, size_t port_index,
                                                     const std::string& hostnqn,
                                                     const std::array<uint8_t, 16>& hostid,
                                                     uint32_t kato_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_.load()) return nullptr;
  for (uint32_t tries = 0; tries < 0xFFEF; ++tries) {
    const uint16_t id = next_cntlid_;
    next_cntlid_ = next_cntlid_ >= 0xFFEF ? 1 : next_cntlid_ + 1;  // FFF0h..FFFFh are reserved
    if (controllers_.count(id)) continue;
    auto ctrl = std::make_shared<Controller>(id, subsystem, port_index, hostnqn, hostid, kato_ms,
                                             config_.max_io_queues);
    ctrl->tbkas = config_.tbkas && !subsystem->discovery();
    ctrl->last_command_ns.store(MonotonicNanos());
    controllers_.emplace(id, ctrl);
    return ctrl;
  }
  return nullptr;
}

std::shared_ptr<Controller> Target::FindController(uint16_t cntlid) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = controllers_.find(cntlid);
  return it == controllers_.end() ? nullptr : it->second;
}

void Target::RemoveController(const std::shared_ptr<Controller>& ctrl) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = controllers_.find(ctrl->cntlid());
    if (it != controllers_.end() && it->second == ctrl) controllers_.erase(it);
  }
  ctrl->Remove();
}

ControllerIdentity Target::IdentityFor(const Controller& ctrl) const {
  const Subsystem& sub = ctrl.subsystem();
  ControllerIdentity id;
  id.cntlid = ctrl.cntlid();
  id.discovery = sub.discovery();
  id.subnqn = sub.nqn();
  id.serial = sub.serial();
  id.model = sub.model();
  id.firmware = config_.firmware;
  id.mdts = config_.mdts;
  id.maxcmd = config_.queue_size;
  id.nn = sub.discovery() ? 0 : sub.max_nsid();
  id.in_capsule_data = config_.in_capsule_data;
  id.ana_group_max = ana_group_max_;
  id.anatt = config_.anatt;
  id.cqt = config_.cqt;
  id.tbkas = config_.tbkas && !sub.discovery();
  id.vwc = config_.volatile_write_cache;
  return id;
}

std::vector<uint8_t> Target::DiscoveryLog(const std::string& hostnqn, const std::string& local_addr,
                                          uint8_t local_adrfam) const {
  std::vector<DiscoveryRecord> records;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& sub : subsystems_) {
    if (!sub->HostAllowed(hostnqn)) continue;
    for (size_t i = 0; i < ports_.size(); ++i) {
      if (!sub->OnPort(i)) continue;
      const Port& p = *ports_[i];
      DiscoveryRecord r;
      r.subtype = 2;  // NVM subsystem
      r.adrfam = p.wildcard ? local_adrfam : p.adrfam;
      r.portid = p.config.port_id != 0 ? p.config.port_id : static_cast<uint16_t>(i + 1);
      r.subnqn = sub->nqn();
      r.traddr = p.wildcard ? local_addr : p.config.address;
      r.trsvcid = std::to_string(p.bound_port);
      records.push_back(std::move(r));
    }
  }
  for (const ReferralConfig& ref : referrals_) {
    DiscoveryRecord r;
    r.subtype = 1;  // referral to another discovery controller
    r.adrfam = AdrfamOf(ref.address).value_or(1);
    r.portid = ref.port_id;
    r.subnqn = nvme::kDiscoveryNqn;
    r.traddr = ref.address;
    r.trsvcid = std::to_string(ref.port);
    records.push_back(std::move(r));
  }
  return BuildDiscoveryLog(genctr_.load(), records);
}

void Target::BumpDiscoveryGeneration() {
  std::vector<std::shared_ptr<Controller>> notify;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++genctr_;
    for (const auto& [id, ctrl] : controllers_) {
      if (ctrl->discovery()) notify.push_back(ctrl);
    }
  }
  for (const auto& ctrl : notify) {
    ctrl->NotifyEvent({nvme::kAerTypeNotice, nvme::kAerNoticeDiscoveryLogChange,
                       static_cast<uint8_t>(nvme::LogPageId::kDiscovery)},
                      nvme::kAecDiscoveryLogChange);
  }
}

absl::Status Target::AddReferral(const ReferralConfig& referral) {
  RETURN_IF_ERROR(AdrfamOf(referral.address).status());
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!started_.load()) {
      config_.referrals.push_back(referral);
      return absl::OkStatus();
    }
    for (const ReferralConfig& r : referrals_) {
      if (r.address == referral.address && r.port == referral.port) {
        return absl::AlreadyExistsError(
            absl::StrCat("referral ", HostPort(r.address, r.port), " exists"));
      }
    }
    referrals_.push_back(referral);
  }
  BumpDiscoveryGeneration();
  return absl::OkStatus();
}

absl::Status Target::RemoveReferral(const std::string& address, uint16_t port) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto& list = started_.load() ? referrals_ : config_.referrals;
    auto it = std::find_if(list.begin(), list.end(), [&](const ReferralConfig& r) {
      return r.address == address && r.port == port;
    });
    if (it == list.end()) {
      return absl::NotFoundError(absl::StrCat("no referral ", HostPort(address, port)));
    }
    list.erase(it);
    if (!started_.load()) return absl::OkStatus();
  }
  BumpDiscoveryGeneration();
  return absl::OkStatus();
}

absl::Status Target::AddSubsystem(const SubsystemConfig& config) {
  if (!started_.load()) {
    std::lock_guard<std::mutex> lock(mu_);
    config_.subsystems.push_back(config);
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Subsystem> sub, Subsystem::Create(config, ports_.size()));
  for (uint32_t g : sub->AnaGroups()) {
    if (g > ana_group_max_) {
      return absl::InvalidArgumentError(
          absl::StrCat("ANA group ", g, " above ANAGRPMAX ", ana_group_max_));
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& s : subsystems_) {
      if (s->nqn() == sub->nqn()) {
        return absl::AlreadyExistsError(absl::StrCat("subsystem ", sub->nqn(), " exists"));
      }
    }
    subsystems_.push_back(std::move(sub));
  }
  BumpDiscoveryGeneration();
  return absl::OkStatus();
}

// --- Introspection ---------------------------------------------------------------------------

absl::StatusOr<NamespaceCounters> Target::Counters(std::string_view nqn, uint32_t nsid) const {
  const Subsystem* sub = FindSubsystem(nqn);
  const Namespace* ns = sub ? sub->FindNamespace(nsid) : nullptr;
  if (ns == nullptr) {
    return absl::NotFoundError(absl::StrCat("no namespace ", nsid, " in ", std::string(nqn)));
  }
  return ns->counters();
}

absl::Status Target::ReadNamespace(std::string_view nqn, uint32_t nsid, uint64_t offset,
                                   std::span<uint8_t> out) const {
  const Subsystem* sub = FindSubsystem(nqn);
  const Namespace* ns = sub ? sub->FindNamespace(nsid) : nullptr;
  if (ns == nullptr) {
    return absl::NotFoundError(absl::StrCat("no namespace ", nsid, " in ", std::string(nqn)));
  }
  const uint64_t size = ns->blocks() << ns->lba_shift();
  if (offset > size || out.size() > size - offset) {
    return absl::OutOfRangeError("read beyond the end of the namespace");
  }
  if (int rc = ns->backend().Read(offset, out.data(), out.size()); rc < 0) {
    return ErrnoToStatus(rc, "namespace read");
  }
  return absl::OkStatus();
}

size_t Target::LiveControllers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return controllers_.size();
}

size_t Target::LiveConnections() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<size_t>(
      std::count_if(conns_.begin(), conns_.end(), [](const auto& c) { return !c->done(); }));
}

TransportStats Target::Stats() const {
  TransportStats s;
  s.connections = stats_.connections.load();
  s.capsules = stats_.capsules.load();
  s.r2ts = stats_.r2ts.load();
  s.h2c_data = stats_.h2c_data.load();
  s.c2h_data = stats_.c2h_data.load();
  s.c2h_success = stats_.c2h_success.load();
  s.term_reqs = stats_.term_reqs.load();
  s.events = stats_.events.load();
  s.keep_alives = stats_.keep_alives.load();
  s.malice = stats_.malice.load();
  s.host_term_reqs = stats_.host_term_reqs.load();
  s.last_host_fes = static_cast<uint16_t>(stats_.last_host_fes.load());
  s.last_host_fei = stats_.last_host_fei.load();
  return s;
}

namespace {
std::string HostIdText(const std::array<uint8_t, 16>& h) {
  std::string text;
  for (size_t i = 0; i < h.size(); ++i) {
    absl::StrAppend(&text, (i == 4 || i == 6 || i == 8 || i == 10) ? "-" : "",
                    absl::Hex(h[i], absl::kZeroPad2));
  }
  return text;
}
}  // namespace

void Target::RecordConnectHostId(const std::array<uint8_t, 16>& hostid) {
  std::lock_guard<std::mutex> lock(mu_);
  last_hostid_ = HostIdText(hostid);
}

std::string Target::LastConnectHostId() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_hostid_;
}

std::string Target::DescribeState() const {
  std::ostringstream os;
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < ports_.size(); ++i) {
    const Port& p = *ports_[i];
    os << "port " << i << " " << HostPort(p.config.address, p.bound_port);
    for (uint32_t g = 1; g <= ana_group_max_; ++g) {
      const auto s = static_cast<AnaState>(p.ana[g].load());
      if (s != AnaState::kOptimized) os << " ana" << g << "=" << ToString(s);
    }
    os << "\n";
  }
  for (const auto& [id, ctrl] : controllers_) {
    os << "controller " << id << " " << ctrl->subsystem().nqn() << " host " << ctrl->hostnqn()
       << " hostid " << HostIdText(ctrl->hostid()) << " port " << ctrl->port_index()
       << " io-queues " << ctrl->io_queue_count() << "\n";
  }
  for (const auto& sub : subsystems_) {
    for (const auto& ns : sub->namespaces()) {
      const NamespaceCounters c = ns->counters();
      os << "namespace " << sub->nqn() << " " << ns->nsid() << " blocks " << ns->blocks() << "x"
         << ns->block_size() << " ana-group " << ns->ana_group() << " reads " << c.reads
         << " writes " << c.writes << " flushes " << c.flushes << " write-zeroes " << c.write_zeroes
         << " deallocates " << c.deallocates << " bytes-read " << c.bytes_read << " bytes-written "
         << c.bytes_written << "\n";
    }
  }
  size_t live = 0;
  for (const auto& c : conns_) live += c->done() ? 0 : 1;
  os << "connections " << live << " discovery-generation " << genctr_.load() << "\n";
  os << "transport accepted " << stats_.connections.load() << " capsules " << stats_.capsules.load()
     << " term-reqs " << stats_.term_reqs.load() << " malice " << stats_.malice.load()
     << " host-term-reqs " << stats_.host_term_reqs.load() << " last-host-fes "
     << stats_.last_host_fes.load() << " last-host-fei " << stats_.last_host_fei.load() << "\n";
  return os.str();
}

}  // namespace nvmf_ublk::target
