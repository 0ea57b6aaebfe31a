#include "io/controller.h"

#include <algorithm>
#include <cerrno>
#include <future>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/clock.h"
#include "base/endian.h"
#include "base/log.h"
#include "base/status.h"
#include "nvme/commands.h"

namespace nvmf_ublk::io {
namespace {

constexpr uint16_t kAdminQueueSize = 32;
constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSec = 1'000'000'000;
constexpr uint32_t kMaxAers = 4;

}  // namespace

const char* Controller::ToString(int state) {
  switch (state) {
    case kNew:
      return "new";
    case kConnecting:
      return "connecting";
    case kLive:
      return "live";
    case kResetting:
      return "resetting";
    case kDeleting:
      return "deleting";
    case kDeleted:
      return "deleted";
  }
  return "?";
}

const char* Controller::ToString(BringUpStep step) {
  switch (step) {
    case BringUpStep::kIdle:
      return "idle";
    case BringUpStep::kAdminConnect:
      return "admin-connect";
    case BringUpStep::kReadCap:
      return "read-cap";
    case BringUpStep::kReadVersion:
      return "read-version";
    case BringUpStep::kEnable:
      return "enable";
    case BringUpStep::kWaitReady:
      return "wait-ready";
    case BringUpStep::kIdentifyController:
      return "identify-controller";
    case BringUpStep::kSetQueueCount:
      return "set-queue-count";
    case BringUpStep::kConfigureEvents:
      return "configure-events";
    case BringUpStep::kListNamespaces:
      return "list-namespaces";
    case BringUpStep::kIdentifyNamespace:
      return "identify-namespace";
    case BringUpStep::kReadAnaLog:
      return "read-ana-log";
    case BringUpStep::kConnectIoQueues:
      return "connect-io-queues";
    case BringUpStep::kDone:
      return "done";
  }
  return "?";
}

void Controller::SetStep(BringUpStep step) {
  if (step == step_) return;
  NLOG(DEBUG) << name() << ": bring-up " << ToString(step_) << " -> " << ToString(step);
  step_ = step;
}

Controller::Controller(ControllerOptions options, Reactor* admin_reactor,
                       std::vector<Reactor*> io_reactors, ControllerListener* listener)
    : options_(std::move(options)),
      admin_reactor_(admin_reactor),
      io_reactors_(std::move(io_reactors)),
      listener_(listener) {
  if (options_.kato_s < 0) options_.kato_s = options_.discovery ? 30 : 5;
  if (options_.name.empty()) {
    options_.name = absl::StrCat(options_.discovery ? "discovery-" : "nvmeof-", options_.traddr,
                                 ":", options_.trsvcid);
  }
  if (io_reactors_.empty()) io_reactors_.push_back(admin_reactor_);
}

Controller::~Controller() {
  if (state_ != kNew && state_ != kDeleted) {
    NLOG(ERROR) << name() << ": destroyed in state " << ToString(state_);
  }
  // Every timer captures `this`: none may fire after the destructor.
  for (Reactor::TimerId t : {reconnect_timer_, fast_fail_timer_, keep_alive_timer_, tick_timer_,
                             poll_timer_, anatt_timer_}) {
    if (t) admin_reactor_->CancelTimer(t);
  }
  // Each queue is destroyed on its own reactor thread.
  for (auto& q : io_queues_) {
    Reactor* r = q->reactor();
    if (r->InReactorThread()) {
      q.reset();
      continue;
    }
    std::promise<void> done;
    IoQueue* raw = q.release();
    r->Post([raw, &done] {
      delete raw;
      done.set_value();
    });
    done.get_future().wait();
  }
}

void Controller::SetState(State s, const absl::Status& why) {
  if (s == state_) return;
  if (why.ok()) {
    NLOG(INFO) << name() << ": " << ToString(state_) << " -> " << ToString(s);
  } else {
    NLOG(WARNING) << name() << ": " << ToString(state_) << " -> " << ToString(s) << ": " << why;
  }
  state_ = s;
  listener_->OnControllerState(this, s, why);
}

absl::Status Controller::Start() {
  if (state_ != kNew) return absl::FailedPreconditionError("controller already started");
  ASSIGN_OR_RETURN(target_, ResolveAddress(options_.traddr, options_.trsvcid));
  if (!options_.host_traddr.empty()) {
    ASSIGN_OR_RETURN(source_, ResolveAddress(options_.host_traddr, "0", /*allow_any_port=*/true));
  }
  uint8_t hostid[16];
  std::copy(options_.hostid.begin(), options_.hostid.end(), hostid);
  RETURN_IF_ERROR(nvme::BuildConnectData(hostid, 0, options_.subnqn, options_.hostnqn));
  if (options_.tls_psk) {
    ASSIGN_OR_RETURN(
        auth::TlsIdentity id,
        auth::DeriveTlsIdentity(*options_.tls_psk, options_.hostnqn, options_.subnqn, 0));
    auto t = std::make_shared<TlsOptions>();
    t->identity = id.identity;
    t->psk = id.tls_psk;
    t->hash = id.hash;
    tls_ = std::move(t);
  }
  SetState(kConnecting);
  Connect();
  return absl::OkStatus();
}

ConnectionOptions Controller::MakeConnectionOptions(uint16_t qid, uint16_t queue_size) {
  ConnectionOptions c;
  c.target = target_;
  c.source = source_;
  c.interface = options_.host_iface;
  c.tos = options_.tos;
  c.connect_timeout_ns = options_.connect_timeout_ns;
  c.tls = tls_;
  tcp::HostQueueOptions& q = c.queue;
  q.qid = qid;
  q.queue_size = queue_size;
  q.kato_ms = qid == 0 ? static_cast<uint32_t>(options_.kato_s) * 1000 : 0;
  q.header_digest = options_.hdr_digest;
  q.data_digest = options_.data_digest;
  q.disable_sq_flow_control = options_.disable_sqflow;
  // ICDOFF != 0 puts in-capsule data at an offset after the SQE: rather than guess where, send
  // every I/O write's data over R2T, which ICDOFF does not affect.
  q.in_capsule_data = qid == 0 ? 8192 : info_.icdoff != 0 ? 0 : info_.InCapsuleDataBytes();
  if (max_transfer_ != 0) {
    q.max_c2h_data = static_cast<uint32_t>(std::min<uint64_t>(max_transfer_, 64u << 20));
  }
  q.cntlid = qid == 0 ? nvme::kAdminCntlidDynamic : cntlid();
  q.subnqn = options_.subnqn;
  q.hostnqn = options_.hostnqn;
  q.hostid = options_.hostid;
  q.dhchap = options_.dhchap;
  q.auth_transaction = qid;  // unique among the association's concurrent transactions
  q.name = absl::StrCat(options_.name, ":q", qid);
  return c;
}

void Controller::Connect() {
  ++epoch_;
  SetStep(BringUpStep::kAdminConnect);
  dead_admins_.clear();
  admin_ =
      std::make_unique<TcpConnection>(admin_reactor_, MakeConnectionOptions(0, kAdminQueueSize),
                                      static_cast<ConnectionObserver*>(this));
  admin_->Start();
}

void Controller::SubmitAdmin(const nvme::Sqe& sqe, void* data, uint32_t len, AdminCallback cb,
                             int64_t timeout_ns, bool keep_alive) {
  if (!admin_ || !admin_->live()) {
    cb(IoResult{-ENOTCONN});
    return;
  }
  if (timeout_ns < 0) timeout_ns = options_.admin_timeout_ns;
  const uint64_t cookie = next_cookie_++;
  admin_pending_[cookie] =
      PendingAdmin{std::move(cb), timeout_ns ? MonotonicNanos() + timeout_ns : 0,
                   nvme::CommandName(sqe, true), keep_alive};
  // The timeout check runs only while a command that can time out is out (no idle wakeups).
  if (timeout_ns && !tick_timer_) {
    tick_timer_ = admin_reactor_->AddTimerAfter(kSec, [this] { AdminTick(); });
  }
  const int rc = admin_->Submit(sqe, data, len, cookie);
  if (rc < 0) {
    auto node = admin_pending_.extract(cookie);
    node.mapped().cb(IoResult{rc});
  }
}

void Controller::OnCommandDone(TcpConnection*, uint64_t cookie, const nvme::Cqe& cqe, int error) {
  auto node = admin_pending_.extract(cookie);
  if (node.empty()) return;
  // The last command that could time out is back: no timeout check until the next one.
  if (tick_timer_ && node.mapped().deadline_ns != 0 &&
      std::none_of(admin_pending_.begin(), admin_pending_.end(),
                   [](const auto& e) { return e.second.deadline_ns != 0; })) {
    admin_reactor_->CancelTimer(tick_timer_);
    tick_timer_ = 0;
  }
  IoResult r;
  r.err = error;
  r.status = static_cast<uint16_t>(cqe.status.get() >> 1);
  r.dw0 = cqe.dw0.get();
  r.dw1 = cqe.dw1.get();
  node.mapped().cb(r);
}

void Controller::Step(const char* what, const nvme::Sqe& sqe, void* data, uint32_t len,
                      std::function<void(const IoResult&)> next) {
  const uint64_t epoch = epoch_;
  SubmitAdmin(sqe, data, len, [this, epoch, what, next = std::move(next)](const IoResult& r) {
    if (epoch != epoch_ || state_ != kConnecting) return;  // a newer association took over
    if (!r.ok()) {
      FailBringUp(what, r);
      return;
    }
    next(r);
  });
}

void Controller::FailBringUp(const char* what, const IoResult& r) { FailBringUp(r.ToStatus(what)); }

absl::Status Controller::StopBringUp(const absl::Status& status) {
  const BringUpStep at = step_;
  SetStep(BringUpStep::kIdle);
  if (at == BringUpStep::kIdle || at == BringUpStep::kDone || status.ok()) return status;
  // Which step stopped it, for the log and for the user's error line.
  return absl::Status(status.code(),
                      absl::StrCat(status.message(), " (bring-up step ", ToString(at), ")"));
}

void Controller::FailBringUp(const absl::Status& status) {
  const absl::Status why = StopBringUp(status);
  if (ever_live_ || options_.retry_initial_connect) {
    ErrorRecovery(why);
    return;
  }
  // The first association never came up: give up now, like `nvme connect`.
  if (state_ == kDeleting || state_ == kDeleted) return;
  delete_reason_ = why;
  SetState(kDeleting, why);
  CloseAll(why);
  MaybeReconnect();
}

void Controller::OnConnectionLive(TcpConnection* conn) {
  if (conn != admin_.get() || state_ != kConnecting) return;
  cntlid_.store(conn->queue().cntlid(), std::memory_order_relaxed);
  ReadCap();
}

void Controller::ReadCap() {
  SetStep(BringUpStep::kReadCap);
  Step("Property Get CAP", nvme::BuildPropertyGet(nvme::Property::kCap), nullptr, 0,
       [this](const IoResult& r) {
         cap_ = uint64_t{r.dw0} | (uint64_t{r.dw1} << 32);
         // MQES is 0's based with a minimum of 1 (NVMe Base, CAP): a one-entry queue could never
         // hold a command (SQ full = tail + 1 == head), so such a controller is refused.
         if (nvme::CapMqes(cap_) < 2) {
           FailBringUp(absl::FailedPreconditionError(absl::StrCat(
               "controller reports CAP.MQES 0 (queues of one entry; the minimum is 1, i.e. 2 "
               "entries): refusing it")));
           return;
         }
         SetStep(BringUpStep::kReadVersion);
         Step("Property Get VS", nvme::BuildPropertyGet(nvme::Property::kVs), nullptr, 0,
              [this](const IoResult& vs) {
                vs_ = vs.dw0;
                EnableController();
              });
       });
}

void Controller::EnableController() {
  SetStep(BringUpStep::kEnable);
  // 4 KiB memory pages (MPS 0), NVM command set, 64-byte SQEs and 16-byte CQEs.
  cc_ = nvme::kCcEnable | nvme::kCcCssNvm | nvme::kCcIosqes | nvme::kCcIocqes;
  Step("Property Set CC", nvme::BuildPropertySet(nvme::Property::kCc, cc_), nullptr, 0,
       [this](const IoResult&) {
         // CAP.TO is the worst case in 500 ms units; 0 means "unspecified": allow 500 ms.
         const int64_t to_ns = std::max<int64_t>(nvme::CapTimeoutMs(cap_), 500) * kMs;
         WaitReady(MonotonicNanos() + to_ns);
       });
}

void Controller::WaitReady(int64_t deadline_ns) {
  SetStep(BringUpStep::kWaitReady);
  Step(
      "Property Get CSTS", nvme::BuildPropertyGet(nvme::Property::kCsts), nullptr, 0,
      [this, deadline_ns](const IoResult& r) {
        if (r.dw0 & nvme::kCstsFatal) {
          FailBringUp(absl::InternalError("controller reports Controller Fatal Status (CSTS.CFS)"));
          return;
        }
        if (r.dw0 & nvme::kCstsReady) {
          IdentifyController();
          return;
        }
        if (MonotonicNanos() > deadline_ns) {
          FailBringUp(absl::DeadlineExceededError(
              absl::StrFormat("controller did not become ready (CSTS.RDY) within CAP.TO = %u ms",
                              nvme::CapTimeoutMs(cap_))));
          return;
        }
        const uint64_t epoch = epoch_;
        poll_timer_ = admin_reactor_->AddTimerAfter(10 * kMs, [this, epoch, deadline_ns] {
          poll_timer_ = 0;
          if (epoch == epoch_ && state_ == kConnecting) WaitReady(deadline_ns);
        });
      });
}

void Controller::IdentifyController() {
  SetStep(BringUpStep::kIdentifyController);
  Step("Identify Controller", nvme::BuildIdentify(nvme::IdentifyCns::kController, 0), identify_buf_,
       sizeof(identify_buf_), [this](const IoResult&) {
         auto info = nvme::ParseIdentifyController(identify_buf_, sizeof(identify_buf_));
         if (!info.ok()) {
           FailBringUp(info.status());
           return;
         }
         info_ = *info;
         if (info_.icdoff != 0) {
           NLOG(INFO) << name() << ": ICDOFF " << info_.icdoff
                      << ": I/O queue writes send their data over R2T, none in-capsule";
         }
         for (size_t i = 0; i < crdt_.size(); ++i) {
           crdt_[i].store(info_.crdt[i], std::memory_order_relaxed);
         }
         max_transfer_ = nvme::MaxTransferBytes(info_, 4096u << nvme::CapMpsMin(cap_));
         ana_reporting_.store(!options_.discovery && info_.SupportsAnaReporting(),
                              std::memory_order_relaxed);
         ghost_hold_ns_.store(
             options_.ghost_write_hold
                 ? int64_t{std::max(options_.kato_s, 0)} * kSec + int64_t{info_.cqt} * kMs
                 : 0,
             std::memory_order_relaxed);
         if (options_.discovery) {
           ConfigureEvents();
           return;
         }
         if (info_.IsDiscoveryController()) {
           FailBringUp(absl::InvalidArgumentError(absl::StrCat(
               options_.subnqn, " is a discovery controller; use discover/connect-all")));
           return;
         }
         SetQueueCount();
       });
}

void Controller::SetQueueCount() {
  SetStep(BringUpStep::kSetQueueCount);
  uint32_t want =
      options_.nr_io_queues ? options_.nr_io_queues : static_cast<uint32_t>(io_reactors_.size());
  want = std::min<uint32_t>(want, static_cast<uint32_t>(io_reactors_.size()));
  Step("Set Features (Number of Queues)", nvme::BuildSetNumberOfQueues(static_cast<uint16_t>(want)),
       nullptr, 0, [this, want](const IoResult& r) {
         nvme::Cqe cqe{};
         cqe.dw0.set(r.dw0);
         granted_queues_ = std::min(want, nvme::GrantedQueueCount(cqe));
         if (io_queues_.empty()) {
           for (uint32_t i = 0; i < granted_queues_; ++i) {
             io_queues_.push_back(std::make_unique<IoQueue>(this, static_cast<uint16_t>(i + 1),
                                                            io_reactors_[i], options_.io_timeout_ns,
                                                            options_.abort_timeout_ns));
             io_open_.push_back(false);
           }
         } else if (granted_queues_ < io_queues_.size()) {
           FailBringUp(absl::ResourceExhaustedError(
               absl::StrFormat("controller granted %u I/O queues, fewer than the %u in use",
                               granted_queues_, io_queues_.size())));
           return;
         }
         ConfigureEvents();
       });
}

void Controller::ConfigureEvents() {
  SetStep(BringUpStep::kConfigureEvents);
  uint32_t aec = 0;
  if (options_.discovery) {
    aec = nvme::kAecDiscoveryLogChange;
  } else {
    if (info_.oaes & nvme::kAecNamespaceAttribute) aec |= nvme::kAecNamespaceAttribute;
    if (info_.oaes & nvme::kAecAnaChange) aec |= nvme::kAecAnaChange;
  }
  auto next = [this] {
    const uint32_t n = std::min<uint32_t>(info_.aerl + 1u, kMaxAers);
    for (uint32_t i = 0; i < n; ++i) SubmitAer();
    if (options_.discovery) {
      BecomeLive();
    } else {
      IdentifyNamespaces();
    }
  };
  if (aec == 0 || (options_.discovery && !(info_.oaes & nvme::kAecDiscoveryLogChange))) {
    next();
    return;
  }
  const uint64_t epoch = epoch_;
  SubmitAdmin(nvme::BuildSetFeatures(nvme::FeatureId::kAsyncEventConfig, aec), nullptr, 0,
              [this, epoch, next](const IoResult& r) {
                if (epoch != epoch_ || state_ != kConnecting) return;
                if (!r.ok()) {
                  NLOG(WARNING) << name() << ": "
                                << r.ToStatus("Set Features (Async Event Configuration)");
                }
                next();
              });
}

void Controller::SubmitAer() {
  const uint64_t epoch = epoch_;
  SubmitAdmin(
      nvme::BuildAsyncEventRequest(), nullptr, 0,
      [this, epoch](const IoResult& r) {
        if (epoch != epoch_ || r.err != 0) return;  // association gone; re-armed on reconnect
        if (!r.ok()) {
          // "Asynchronous Event Request Limit Exceeded" and the like: stop re-arming this one.
          NLOG(DEBUG) << name() << ": " << r.ToStatus("Asynchronous Event Request");
          return;
        }
        nvme::Cqe cqe{};
        cqe.dw0.set(r.dw0);
        const nvme::AsyncEvent event = nvme::ParseAsyncEvent(cqe);
        NLOG(INFO) << name() << ": asynchronous event: " << nvme::AsyncEventName(event)
                   << " (log page 0x" << std::hex << int{event.log_page} << ")";
        SubmitAer();
        if (event.type == nvme::kAerTypeNotice && event.info == nvme::kAerNoticeAnaChange &&
            ana_reporting_.load(std::memory_order_relaxed)) {
          RefreshAna();  // reading the log also clears the event
        }
        if (event.type == nvme::kAerTypeNotice &&
            event.info == nvme::kAerNoticeNamespaceAttribute && !options_.discovery) {
          RefreshNamespaces();
        }
        listener_->OnAsyncEvent(this, event);
      },
      /*timeout_ns=*/0);
}

absl::Status NoUsableNamespaces(const std::string& subnqn,
                                const std::vector<RefusedNamespace>& refused) {
  if (refused.empty()) {
    return absl::NotFoundError(absl::StrCat(subnqn, " has no active namespaces"));
  }
  std::string why = absl::StrCat(subnqn, " has no usable namespaces");
  for (const RefusedNamespace& r : refused) {
    absl::StrAppend(&why, "; namespace ", r.nsid, ": ", r.why.message());
  }
  return absl::NotFoundError(why);
}

void Controller::IdentifyNamespaces() {
  SetStep(BringUpStep::kListNamespaces);
  Step("Identify (Active Namespace List)",
       nvme::BuildIdentify(nvme::IdentifyCns::kActiveNamespaceList, 0), identify_buf_,
       sizeof(identify_buf_), [this](const IoResult&) {
         auto list = nvme::ParseActiveNamespaceList(identify_buf_, sizeof(identify_buf_));
         if (!list.ok()) {
           FailBringUp(list.status());
           return;
         }
         nsids_ = *list;
         namespaces_.clear();
         refused_.clear();
         if (!nsids_.empty() && nsids_.back() > info_.nn) {
           // The list is what the controller serves; NN only bounds a scan, which we do not do.
           NLOG(WARNING) << name() << ": the Active Namespace List names NSID " << nsids_.back()
                         << ", above NN " << info_.nn << " of Identify Controller; using the list";
         }
         IdentifyNamespace(0);
       });
}

void Controller::IdentifyNamespace(size_t index) {
  if (index >= nsids_.size()) {
    if (!ana_reporting_.load(std::memory_order_relaxed)) {
      ConnectIoQueues();
      return;
    }
    SetStep(BringUpStep::kReadAnaLog);
    const uint64_t epoch = epoch_;
    ReadAnaLog([this, epoch](const absl::Status& s) {
      if (epoch != epoch_ || state_ != kConnecting) return;
      if (!s.ok()) {
        FailBringUp(s);
        return;
      }
      ConnectIoQueues();
    });
    return;
  }
  const uint32_t nsid = nsids_[index];
  SetStep(BringUpStep::kIdentifyNamespace);
  Step("Identify Namespace", nvme::BuildIdentify(nvme::IdentifyCns::kNamespace, nsid),
       identify_buf_, sizeof(identify_buf_), [this, index, nsid](const IoResult&) {
         auto ns = nvme::ParseIdentifyNamespace(identify_buf_, sizeof(identify_buf_));
         absl::Status refused =
             ns.ok() ? nvme::CheckNamespaceServable(*ns, max_transfer_) : ns.status();
         if (!refused.ok()) {
           // One namespace the host cannot map does not take the others down with it.
           NLOG(ERROR) << name() << ": namespace " << nsid << " refused: " << refused.message();
           refused_.push_back(RefusedNamespace{nsid, refused});
           IdentifyNamespace(index + 1);
           return;
         }
         if (ns->inactive()) {
           IdentifyNamespace(index + 1);
           return;
         }
         NamespaceEntry entry{nsid, *ns, nvme::NamespaceIdsFromIdentify(*ns)};
         const uint64_t epoch = epoch_;
         // The descriptor list is optional for old controllers: fall back to Identify's IDs.
         SubmitAdmin(
             nvme::BuildIdentify(nvme::IdentifyCns::kNamespaceIdDescriptors, nsid), identify_buf_,
             sizeof(identify_buf_), [this, epoch, index, entry](const IoResult& r) mutable {
               if (epoch != epoch_ || state_ != kConnecting) return;
               if (r.err != 0) {
                 FailBringUp("Identify (Namespace ID Descriptors)", r);
                 return;
               }
               if (r.ok()) {
                 auto ids = nvme::ParseNamespaceIdDescriptors(identify_buf_, sizeof(identify_buf_));
                 if (ids.ok()) {
                   if (ids->nguid) entry.ids.nguid = ids->nguid;
                   if (ids->eui64) entry.ids.eui64 = ids->eui64;
                   if (ids->uuid) entry.ids.uuid = ids->uuid;
                   if (ids->csi) entry.ids.csi = ids->csi;
                 }
               }
               namespaces_.push_back(entry);
               IdentifyNamespace(index + 1);
             });
       });
}

void Controller::ForEachQueue(const std::function<void(IoQueue*)>& fn) {
  for (auto& q : io_queues_) {
    IoQueue* raw = q.get();
    if (raw->reactor()->InReactorThread()) {
      fn(raw);
    } else {
      raw->reactor()->Post([raw, fn] { fn(raw); });
    }
  }
}

void Controller::ConnectIoQueues() {
  SetStep(BringUpStep::kConnectIoQueues);
  io_live_ = 0;
  if (io_queues_.empty()) {
    BecomeLive();
    return;
  }
  const uint16_t qsize =
      static_cast<uint16_t>(std::min<uint32_t>(options_.queue_size, nvme::CapMqes(cap_)));
  const uint64_t epoch = epoch_;
  for (size_t i = 0; i < io_queues_.size(); ++i) {
    io_open_[i] = true;
    IoQueue* q = io_queues_[i].get();
    ConnectionOptions opts = MakeConnectionOptions(q->qid(), qsize);
    auto connect = [q, opts, epoch] { q->Connect(opts, epoch); };
    if (q->reactor()->InReactorThread()) {
      connect();
    } else {
      q->reactor()->Post(connect);
    }
  }
}

void Controller::PostIoQueueLive(uint16_t qid, uint64_t epoch) {
  admin_reactor_->Post([this, qid, epoch] { OnIoQueueLive(qid, epoch); });
}

void Controller::PostIoQueueClosed(uint16_t qid, uint64_t epoch, const absl::Status& why) {
  admin_reactor_->Post([this, qid, epoch, why] { OnIoQueueClosed(qid, epoch, why); });
}

void Controller::PostIoTimeout(uint16_t qid, uint16_t cid, std::string what) {
  admin_reactor_->Post([this, qid, cid, what = std::move(what)] {
    NLOG(WARNING) << name() << ": " << what << "; sending Abort";
    SubmitAdmin(nvme::BuildAbort(qid, cid), nullptr, 0, [this, what](const IoResult& r) {
      if (r.ok()) {
        nvme::Cqe cqe{};
        cqe.dw0.set(r.dw0);
        NLOG(INFO) << name() << ": Abort of " << what << ": "
                   << (nvme::AbortSucceeded(cqe) ? "aborted" : "not aborted");
      } else {
        NLOG(WARNING) << name() << ": " << r.ToStatus("Abort");
      }
    });
  });
}

void Controller::OnIoQueueLive(uint16_t, uint64_t epoch) {
  if (epoch != epoch_ || state_ != kConnecting) return;
  if (++io_live_ == io_queues_.size()) BecomeLive();
}

void Controller::OnIoQueueClosed(uint16_t qid, uint64_t, const absl::Status& why) {
  if (qid == 0 || qid > io_open_.size()) return;
  io_open_[qid - 1] = false;
  if (state_ == kConnecting || state_ == kLive) {
    ErrorRecovery(why.ok() ? absl::UnavailableError(absl::StrCat("I/O queue ", qid, " closed"))
                           : why);
    return;
  }
  MaybeReconnect();
}

void Controller::BecomeLive() {
  SetStep(BringUpStep::kDone);
  ever_live_ = true;
  lost_at_ns_ = 0;
  attempts_since_loss_ = 0;
  if (fast_fail_timer_) {
    admin_reactor_->CancelTimer(fast_fail_timer_);
    fast_fail_timer_ = 0;
  }
  fast_fail_expired_ = false;
  // Queues first, then the announcement: a listener that reacts to kLive by submitting I/O (posted
  // to the queue's reactor, after the mode change posted here) must find the queue live, not still
  // failing fast (-ENOTCONN) from the outage.
  ForEachQueue([](IoQueue* q) { q->SetMode(IoQueue::Mode::kLive); });
  SetState(kLive);
  if (options_.kato_s > 0 && !keep_alive_timer_) {
    keep_alive_timer_ =
        admin_reactor_->AddTimerAfter(options_.kato_s * kSec / 2, [this] { KeepAlive(); });
  }
}

void Controller::OnConnectionClosed(TcpConnection* conn, const absl::Status& why) {
  if (conn != admin_.get()) return;
  dead_admins_.push_back(std::move(admin_));
  keep_alive_outstanding_ = false;
  if (state_ == kConnecting || state_ == kLive) {
    if (state_ == kConnecting) {
      FailBringUp(why.ok() ? absl::UnavailableError("admin queue closed") : why);
    } else {
      ErrorRecovery(why.ok() ? absl::UnavailableError("admin queue closed") : why);
    }
    return;
  }
  MaybeReconnect();
}

void Controller::CloseAll(const absl::Status& why) {
  if (keep_alive_timer_) {
    admin_reactor_->CancelTimer(keep_alive_timer_);
    keep_alive_timer_ = 0;
  }
  if (admin_) admin_->Close(why);
  for (size_t i = 0; i < io_queues_.size(); ++i) {
    if (!io_open_[i]) continue;
    IoQueue* q = io_queues_[i].get();
    auto close = [q, why] { q->Close(why); };
    if (q->reactor()->InReactorThread()) {
      close();
    } else {
      q->reactor()->Post(close);
    }
  }
}

bool Controller::AllClosed() const {
  if (admin_) return false;
  return std::none_of(io_open_.begin(), io_open_.end(), [](bool b) { return b; });
}

void Controller::ErrorRecovery(const absl::Status& status) {
  if (state_ == kResetting || state_ == kDeleting || state_ == kDeleted || state_ == kNew) return;
  if (!ever_live_ && !options_.retry_initial_connect) {
    FailBringUp(status);
    return;
  }
  const absl::Status why = StopBringUp(status);
  if (lost_at_ns_ == 0) lost_at_ns_ = MonotonicNanos();
  SetState(kResetting, why);
  // fast_io_fail_tmo runs from the loss; once it expired, I/O keeps failing fast until the
  // controller is live again (like the kernel's NVME_CTRL_FAILFAST_EXPIRED). A failed reconnect
  // attempt comes back here: it must neither park I/O again nor restart the timer (it used to do
  // both, so I/O submitted after the expiry waited up to another fast_io_fail_tmo).
  if (options_.fast_io_fail_tmo_s >= 0 && !fast_fail_timer_ && !fast_fail_expired_) {
    fast_fail_timer_ = admin_reactor_->AddTimerAfter(options_.fast_io_fail_tmo_s * kSec, [this] {
      fast_fail_timer_ = 0;
      fast_fail_expired_ = true;
      NLOG(WARNING) << name() << ": fast_io_fail_tmo expired: failing queued I/O";
      ForEachQueue([](IoQueue* q) { q->SetMode(IoQueue::Mode::kFailFast); });
    });
  }
  if (!fast_fail_expired_) ForEachQueue([](IoQueue* q) { q->SetMode(IoQueue::Mode::kPark); });
  CloseAll(why);
  MaybeReconnect();
}

void Controller::MaybeReconnect() {
  if (!AllClosed()) return;
  if (state_ == kDeleting) {
    FinishDelete(delete_reason_);
    return;
  }
  if (state_ != kResetting || reconnect_timer_) return;
  const int64_t now = MonotonicNanos();
  int64_t delay = int64_t{options_.reconnect_delay_s} * kSec;
  if (options_.reconnect_backoff_max_s > options_.reconnect_delay_s) {
    const int64_t cap = int64_t{options_.reconnect_backoff_max_s} * kSec;
    for (uint32_t i = 0; i < attempts_since_loss_ && delay < cap; ++i) delay *= 2;
    delay = std::min(delay, cap);
  }
  if (options_.ctrl_loss_tmo_s >= 0) {
    // Attempts every reconnect_delay, the last one when ctrl_loss_tmo has passed since the loss;
    // the controller is deleted only once it has. (Judging by when the next attempt would start
    // lost the attempt due exactly at the deadline to timer lateness: ctrl_loss_tmo 2 s with
    // reconnect_delay 1 s gave up after 1 s, and a ctrl_loss_tmo below reconnect_delay never
    // tried at all.)
    const int64_t deadline = lost_at_ns_ + int64_t{options_.ctrl_loss_tmo_s} * kSec;
    if (now >= deadline) {
      delete_reason_ = absl::UnavailableError(
          absl::StrFormat("controller lost: not reconnected within ctrl_loss_tmo (%d s)",
                          options_.ctrl_loss_tmo_s));
      SetState(kDeleting, delete_reason_);
      FinishDelete(delete_reason_);
      return;
    }
    delay = std::min(delay, deadline - now);
  }
  NLOG(INFO) << name() << ": reconnecting in "
             << absl::StrFormat("%.1f", static_cast<double>(delay) / kSec) << " s";
  reconnect_timer_ = admin_reactor_->AddTimerAfter(delay, [this] {
    reconnect_timer_ = 0;
    if (state_ != kResetting) return;
    ++reconnects_;
    ++attempts_since_loss_;
    SetState(kConnecting);
    Connect();
  });
}

void Controller::FinishDelete(const absl::Status& why) {
  for (Reactor::TimerId* t :
       {&reconnect_timer_, &fast_fail_timer_, &keep_alive_timer_, &tick_timer_}) {
    if (*t) admin_reactor_->CancelTimer(*t);
    *t = 0;
  }
  ForEachQueue([](IoQueue* q) { q->SetMode(IoQueue::Mode::kDeleted); });
  SetState(kDeleted, why);
  if (shutdown_done_) {
    auto done = std::move(shutdown_done_);
    shutdown_done_ = nullptr;
    done();
  }
}

void Controller::Shutdown(std::function<void()> done) {
  if (state_ == kDeleted || state_ == kNew) {
    state_ = kDeleted;
    if (done) done();
    return;
  }
  shutdown_done_ = std::move(done);
  if (state_ == kDeleting) return;
  if (reconnect_timer_) {
    admin_reactor_->CancelTimer(reconnect_timer_);
    reconnect_timer_ = 0;
  }
  delete_reason_ = absl::OkStatus();
  const bool orderly = state_ == kLive && admin_ && admin_->live();
  SetStep(BringUpStep::kIdle);
  SetState(kDeleting);
  if (!orderly) {
    CloseAll(absl::CancelledError("controller shut down"));
    MaybeReconnect();
    return;
  }
  // Orderly: stop I/O queues first, then CC.SHN and wait for CSTS.SHST (up to 5 s).
  for (size_t i = 0; i < io_queues_.size(); ++i) {
    if (!io_open_[i]) continue;
    IoQueue* q = io_queues_[i].get();
    auto close = [q] { q->Close(absl::CancelledError("controller shut down")); };
    if (q->reactor()->InReactorThread()) {
      close();
    } else {
      q->reactor()->Post(close);
    }
  }
  SubmitAdmin(
      nvme::BuildPropertySet(nvme::Property::kCc, (cc_ & ~nvme::kCcShnMask) | nvme::kCcShnNormal),
      nullptr, 0, [this](const IoResult& r) {
        if (!r.ok()) {
          CloseAll(absl::CancelledError("controller shut down"));
          MaybeReconnect();
          return;
        }
        WaitShutdown(MonotonicNanos() + 5 * kSec);
      });
}

void Controller::WaitShutdown(int64_t deadline_ns) {
  SubmitAdmin(nvme::BuildPropertyGet(nvme::Property::kCsts), nullptr, 0,
              [this, deadline_ns](const IoResult& r) {
                const bool done = !r.ok() ||
                                  (r.dw0 & nvme::kCstsShstMask) == nvme::kCstsShstComplete ||
                                  MonotonicNanos() > deadline_ns;
                if (!done) {
                  poll_timer_ = admin_reactor_->AddTimerAfter(10 * kMs, [this, deadline_ns] {
                    poll_timer_ = 0;
                    if (state_ == kDeleting) WaitShutdown(deadline_ns);
                  });
                  return;
                }
                CloseAll(absl::CancelledError("controller shut down"));
                MaybeReconnect();
              });
}

void Controller::ReadDiscoveryLog(
    std::function<void(absl::StatusOr<std::vector<nvme::DiscoveryEntry>>)> done) {
  struct Ctx {
    nvme::DiscoveryLogReader reader;
    std::vector<uint8_t> buf;
    std::function<void(absl::StatusOr<std::vector<nvme::DiscoveryEntry>>)> done;
    std::function<void()> next;
  };
  nvme::DiscoveryLogReader::Options ropts;
  if (max_transfer_ != 0) {
    ropts.max_chunk_bytes = static_cast<uint32_t>(std::max<uint64_t>(
        1024, std::min<uint64_t>(ropts.max_chunk_bytes, max_transfer_) / 1024 * 1024));
  }
  auto reader = nvme::DiscoveryLogReader::Create(ropts);
  if (!reader.ok()) {
    done(reader.status());
    return;
  }
  auto ctx = std::make_shared<Ctx>(Ctx{std::move(*reader), {}, std::move(done), nullptr});
  ctx->next = [this, weak = std::weak_ptr<Ctx>(ctx)] {
    auto c = weak.lock();
    if (!c) return;
    const auto read = c->reader.NextRead();
    c->buf.assign(read.length, 0);
    SubmitAdmin(nvme::BuildGetLogPage(nvme::LogPageId::kDiscovery, 0, read.offset, read.length),
                c->buf.data(), read.length, [this, c](const IoResult& r) {
                  if (!r.ok()) {
                    auto d = std::move(c->done);
                    c->next = nullptr;
                    d(r.ToStatus("Get Log Page (Discovery)"));
                    return;
                  }
                  absl::Status s = c->reader.OnData(c->buf.data(), c->buf.size());
                  if (!s.ok() || c->reader.done()) {
                    auto d = std::move(c->done);
                    c->next = nullptr;
                    if (s.ok()) {
                      discovery_genctr_.store(c->reader.generation(), std::memory_order_relaxed);
                      d(c->reader.entries());
                    } else {
                      d(s);
                    }
                    return;
                  }
                  c->next();
                });
  };
  ctx->next();
}

}  // namespace nvmf_ublk::io
