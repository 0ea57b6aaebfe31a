// An NVMe over Fabrics controller association over TCP: the admin queue on the control reactor and
// one I/O queue per I/O reactor, brought up, kept alive, and recovered after errors.
//
// Bring-up (NVMe-oF 1.1 §3.5, Base 2.0 §3.5.1): admin Connect -> Property Get CAP and VS ->
// Property Set CC.EN -> poll CSTS.RDY within CAP.TO -> Identify Controller -> (I/O controllers) Set
// Features Number of Queues -> Asynchronous Event Configuration + Async Event Requests -> Identify
// active namespaces -> connect the I/O queues -> live. Keep Alive every KATO/2.
//
// Error recovery (DESIGN.md §8.6): every failure - a queue's transport or protocol error, an admin
// command or keep-alive timeout, an I/O command whose Abort did not help - enters ErrorRecovery(),
// the one funnel. It tears down all queues (their outstanding commands complete with -ECONNABORTED,
// a failover-class result), parks new I/O, and reconnects every reconnect_delay until ctrl_loss_tmo
// (-1: forever) has passed since the loss; then the controller is deleted and parked I/O fails with
// -ENODEV. With fast_io_fail_tmo >= 0, parked I/O fails with -ENOTCONN that many seconds after the
// loss, and later I/O fails at once, until the controller is live again. A failure before the
// controller was ever live ends it at once with the reason (like `nvme connect`).
//
// Threads: all public methods run on the admin reactor's thread unless noted. I/O is submitted to
// IoQueue objects on their own reactors (see io_queue.h).
#ifndef NVMF_UBLK_IO_CONTROLLER_H_
#define NVMF_UBLK_IO_CONTROLLER_H_

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "auth/dhchap.h"
#include "auth/tls_psk.h"
#include "io/address.h"
#include "io/io_queue.h"
#include "io/io_request.h"
#include "io/reactor.h"
#include "io/tcp_connection.h"
#include "nvme/identify.h"
#include "nvme/log_pages.h"

namespace nvmf_ublk::io {

struct ControllerOptions {
  // Transport ID (nvme-cli: -a, -s, -w, --host-iface).
  std::string traddr;
  std::string trsvcid = "4420";
  std::string host_traddr;
  std::string host_iface;
  std::string subnqn;
  std::string hostnqn;
  std::array<uint8_t, 16> hostid{};
  bool discovery = false;     // connect to a discovery controller (admin queue only)
  uint32_t nr_io_queues = 0;  // 0: one per I/O reactor
  uint32_t queue_size = 128;  // I/O SQ entries (capped by CAP.MQES)
  int kato_s = -1;            // -1: 5 s (30 s for discovery); 0 disables keep-alive
  int reconnect_delay_s = 10;
  int ctrl_loss_tmo_s = 600;    // -1: reconnect forever
  int fast_io_fail_tmo_s = -1;  // -1: off (I/O waits for the reconnect)
  bool hdr_digest = false;
  bool data_digest = false;
  // DH-HMAC-CHAP keys, used on every queue whose Connect response asks (null: none).
  std::shared_ptr<const auth::DhchapHostConfig> dhchap;
  // TLS 1.3 with this configured PSK on every queue (null: plain TCP); the identity offered is
  // "NVMe0R0<h> <hostnqn> <subnqn>" with the TLS PSK derived for it (auth/tls_psk.h).
  std::shared_ptr<const auth::TlsPsk> tls_psk;
  bool disable_sqflow = false;
  int tos = -1;  // IP type of service of every connection; -1: the system's default
  // Reconnect backoff: each failed attempt since the loss doubles the delay, from
  // reconnect_delay_s up to this (0: every reconnect_delay_s). For discovery controllers.
  int reconnect_backoff_max_s = 0;
  int64_t connect_timeout_ns = 10'000'000'000;
  int64_t admin_timeout_ns = 30'000'000'000;
  int64_t io_timeout_ns = 30'000'000'000;
  int64_t abort_timeout_ns = 5'000'000'000;  // after an Abort, before resetting
  std::string name;                          // for logs; default "nvmeof-<traddr>:<port>"
  // Treat a failed first connect like a lost association (reconnect until ctrl_loss_tmo) instead
  // of giving up at once: for a restarted daemon whose devices still exist.
  bool retry_initial_connect = false;
  // TP 4129: a write left unanswered by a lost association is re-issued only after KATO + CQT.
  bool ghost_write_hold = true;
};

// The ANA state one namespace has on one controller (Base 2.0 §8.1.3), as the latest ANA log read
// said: written on the admin reactor, read by the I/O reactors on every request (relaxed atomics,
// no lock). A controller without ANA reporting leaves every cell optimized.
struct AnaCell {
  std::atomic<uint8_t> state{nvme::kAnaOptimized};
  std::atomic<uint32_t> group{0};
  // Set when a command failed with a path-related or ANA status, cleared when the ANA log has
  // been read again (or could not be): until then the head sends nothing down this path.
  std::atomic<bool> refreshing{false};
  int64_t change_since_ns = 0;  // admin reactor: when the state became "change" (ANATT)
};

struct NamespaceEntry {
  uint32_t nsid = 0;
  nvme::NamespaceInfo info;
  nvme::NamespaceIds ids;
};

// An active namespace the host cannot map (its Identify data is out of range): the controller
// stays usable for the others.
struct RefusedNamespace {
  uint32_t nsid = 0;
  absl::Status why;
};
// kNotFound for a controller with no namespace to map: "<subnqn> has no active namespaces", or
// "... has no usable namespaces; namespace N: <why>" for each refused one.
absl::Status NoUsableNamespaces(const std::string& subnqn,
                                const std::vector<RefusedNamespace>& refused);

class Controller;

class ControllerListener {
 public:
  virtual ~ControllerListener() = default;
  // State changes; `why` carries the reason for kResetting and kDeleted.
  virtual void OnControllerState(Controller* ctrl, int state, const absl::Status& why) = 0;
  // An Asynchronous Event the controller reported (already acknowledged by re-arming the AER).
  virtual void OnAsyncEvent(Controller*, const nvme::AsyncEvent&) {}
  // A namespace-attribute-changed event named `now.nsid` (or more than the Changed Namespace List
  // holds) and Identify Namespace read it again: `now` is what it reports now (its size may have
  // changed; inactive() when it went away). Admin reactor; must not block.
  virtual void OnNamespaceChanged(Controller*, const NamespaceEntry& now) { (void)now; }
};

class Controller final : private ConnectionObserver {
 public:
  enum State { kNew, kConnecting, kLive, kResetting, kDeleting, kDeleted };
  static const char* ToString(int state);
  // Where an association's bring-up is (kConnecting), in the order the steps run. SetStep logs
  // every change (old -> new, at debug level); a bring-up that fails names the step it stopped at.
  enum class BringUpStep {
    kIdle,                // not connecting
    kAdminConnect,        // TCP connect, ICReq/ICResp, Fabrics Connect of the admin queue
    kReadCap,             // Property Get CAP
    kReadVersion,         // Property Get VS
    kEnable,              // Property Set CC.EN
    kWaitReady,           // Property Get CSTS until RDY (CAP.TO)
    kIdentifyController,  // Identify CNS 01h
    kSetQueueCount,       // Set Features, Number of Queues
    kConfigureEvents,     // Set Features, Asynchronous Event Configuration; AERs
    kListNamespaces,      // Identify CNS 02h
    kIdentifyNamespace,   // Identify CNS 00h and 03h, per namespace
    kReadAnaLog,          // Get Log Page, ANA (only with CMIC.ANA)
    kConnectIoQueues,     // TCP + Fabrics Connect of each I/O queue
    kDone,                // live
  };
  static const char* ToString(BringUpStep step);
  using AdminCallback = std::function<void(const IoResult&)>;

  Controller(ControllerOptions options, Reactor* admin_reactor, std::vector<Reactor*> io_reactors,
             ControllerListener* listener);
  ~Controller() override;
  Controller(const Controller&) = delete;
  Controller& operator=(const Controller&) = delete;

  // Validates the options (address, NQNs) and starts connecting.
  absl::Status Start();
  // Orderly shutdown (CC.SHN when possible), then kDeleted; `done` runs on the admin reactor.
  void Shutdown(std::function<void()> done);
  // The error funnel: tears down the association and reconnects (see above).
  void ErrorRecovery(const absl::Status& status);

  // Admin command; the callback gets -ENOTCONN when the admin queue is not connected. A command
  // not answered within `timeout_ns` (default admin_timeout; 0 = never, for AERs) triggers error
  // recovery.
  void SubmitAdmin(const nvme::Sqe& sqe, void* data, uint32_t len, AdminCallback cb,
                   int64_t timeout_ns = -1, bool keep_alive = false);
  // Reads the whole discovery log (generation-counter rule) from a discovery controller; its
  // generation counter is discovery_genctr() afterwards.
  void ReadDiscoveryLog(
      std::function<void(absl::StatusOr<std::vector<nvme::DiscoveryEntry>>)> done);

  State state() const { return state_; }
  // Admin reactor only.
  BringUpStep bring_up_step() const { return step_; }
  const ControllerOptions& options() const { return options_; }
  const std::string& name() const { return options_.name; }
  // Any thread (the daemon lists them from its control thread).
  uint16_t cntlid() const { return cntlid_.load(std::memory_order_relaxed); }
  // Control reactor only: a reconnect rewrites it.
  const nvme::ControllerInfo& info() const { return info_; }
  // Any thread: the Command Retry Delay for a completion's CRD field (1..3; 0 for none), from the
  // controller's CRDT values of the latest Identify.
  int64_t RetryDelayNs(uint8_t crd) const {
    if (crd == 0 || crd > 3) return 0;
    return int64_t{crdt_[crd - 1].load(std::memory_order_relaxed)} * 100'000'000;
  }
  const std::vector<NamespaceEntry>& namespaces() const { return namespaces_; }
  // Active namespaces left out of namespaces(), each with the reason (logged when found).
  const std::vector<RefusedNamespace>& refused_namespaces() const { return refused_; }
  uint64_t cap() const { return cap_; }
  uint32_t io_queue_count() const { return static_cast<uint32_t>(io_queues_.size()); }
  // Largest data transfer per command (MDTS), 0 if unlimited.
  uint64_t max_transfer_bytes() const { return max_transfer_; }
  uint32_t reconnects() const { return reconnects_.load(std::memory_order_relaxed); }
  // GENCTR of the latest discovery log read completely. Any thread.
  uint64_t discovery_genctr() const { return discovery_genctr_.load(std::memory_order_relaxed); }

  // ANA (Base 2.0 §8.1.3): the log is read at every bring-up (before the controller is live), on
  // an ANA change notice, on RequestAnaRefresh, and ANATT after a namespace entered the "change"
  // state; a namespace still in "change" by then resets the association (like the kernel host).
  // The cell of `nsid`, created on first use and kept for the controller's life. Any thread.
  std::shared_ptr<AnaCell> ana_cell(uint32_t nsid);
  // A path-related or ANA status on `nsid`: marks its cell refreshing and re-reads the ANA log
  // (coalesced). No-op without ANA reporting. Any thread.
  void RequestAnaRefresh(uint32_t nsid);
  // ANA log reads since creation. Any thread.
  uint32_t ana_reads() const { return ana_reads_.load(std::memory_order_relaxed); }
  // TP 4129: KATO + CQT, how long a command this controller left unanswered may still execute
  // at the subsystem after the association is lost (0 when ghost_write_hold is off). Any thread.
  int64_t ghost_hold_ns() const { return ghost_hold_ns_.load(std::memory_order_relaxed); }

  // The I/O queue served by I/O reactor `index` (any thread may call; the queue is used on its
  // reactor). Null before the first bring-up decided the queue count.
  IoQueue* io_queue(size_t index) const {
    return io_queues_.empty() ? nullptr : io_queues_[index % io_queues_.size()].get();
  }

  // Messages from I/O queues: thread-safe, they run on the admin reactor.
  void PostIoQueueLive(uint16_t qid, uint64_t epoch);
  void PostIoQueueClosed(uint16_t qid, uint64_t epoch, const absl::Status& why);
  // Command `cid` on queue `qid` timed out: send an Abort.
  void PostIoTimeout(uint16_t qid, uint16_t cid, std::string what);

 private:
  struct PendingAdmin {
    AdminCallback cb;
    int64_t deadline_ns;  // 0: never times out (AER)
    const char* what;
    bool keep_alive = false;
  };

  // ConnectionObserver (admin connection).
  void OnConnectionLive(TcpConnection* conn) override;
  void OnCommandDone(TcpConnection* conn, uint64_t cookie, const nvme::Cqe& cqe,
                     int error) override;
  void OnConnectionClosed(TcpConnection* conn, const absl::Status& why) override;

  void OnIoQueueLive(uint16_t qid, uint64_t epoch);
  void OnIoQueueClosed(uint16_t qid, uint64_t epoch, const absl::Status& why);
  void SetState(State s, const absl::Status& why = absl::OkStatus());
  void Connect();
  void Step(const char* what, const nvme::Sqe& sqe, void* data, uint32_t len,
            std::function<void(const IoResult&)> next);
  void ReadCap();
  void EnableController();
  void WaitReady(int64_t deadline_ns);
  void IdentifyController();
  void SetQueueCount();
  void ConfigureEvents();
  void IdentifyNamespaces();
  void IdentifyNamespace(size_t index);
  void ConnectIoQueues();
  void ReadAnaLog(std::function<void(const absl::Status&)> done);
  // Namespace Attribute Changed (Base 2.0 §5.27.1.7): reads the Changed Namespace List (which
  // re-arms the event) and Identify Namespace of each known namespace it names.
  void RefreshNamespaces();
  void IdentifyChanged(std::vector<uint32_t> nsids, size_t index);
  void ApplyAnaLog(const nvme::AnaLog& log);
  void ClearAnaRefreshing();
  void RefreshAna();
  void CheckAnaTransition();
  void BecomeLive();
  void SubmitAer();
  void KeepAlive();
  // Answers to I/O commands on every queue so far (admin reactor).
  uint64_t IoAnswers() const;
  void AdminTick();
  void MaybeReconnect();
  void FinishDelete(const absl::Status& why);
  void CloseAll(const absl::Status& why);
  void ForEachQueue(const std::function<void(IoQueue*)>& fn);
  void WaitShutdown(int64_t deadline_ns);
  void SetStep(BringUpStep step);
  // Back to kIdle; `status` with the step it stopped at appended (unchanged when none was running).
  absl::Status StopBringUp(const absl::Status& status);
  void FailBringUp(const char* what, const IoResult& r);
  void FailBringUp(const absl::Status& why);
  ConnectionOptions MakeConnectionOptions(uint16_t qid, uint16_t queue_size);
  bool AllClosed() const;

  ControllerOptions options_;
  Reactor* admin_reactor_;
  std::vector<Reactor*> io_reactors_;
  ControllerListener* listener_;
  State state_ = kNew;
  BringUpStep step_ = BringUpStep::kIdle;
  uint64_t epoch_ = 0;
  bool ever_live_ = false;
  SocketAddress target_;
  std::optional<SocketAddress> source_;
  std::shared_ptr<const TlsOptions> tls_;  // from options_.tls_psk

  std::unique_ptr<TcpConnection> admin_;
  std::vector<std::unique_ptr<TcpConnection>> dead_admins_;  // closed, destroyed next turn
  std::unordered_map<uint64_t, PendingAdmin> admin_pending_;
  uint64_t next_cookie_ = 1;
  std::vector<std::unique_ptr<IoQueue>> io_queues_;
  std::vector<bool> io_open_;  // per I/O queue: a connection exists (not yet reported closed)
  uint32_t io_live_ = 0;

  uint64_t cap_ = 0;
  uint32_t vs_ = 0;
  std::atomic<uint16_t> cntlid_{0};
  nvme::ControllerInfo info_{};
  std::array<std::atomic<uint16_t>, 3> crdt_{};  // info_.crdt, for RetryDelayNs on reactors
  uint64_t max_transfer_ = 0;
  uint32_t granted_queues_ = 0;
  std::vector<uint32_t> nsids_;
  std::vector<NamespaceEntry> namespaces_;
  std::vector<RefusedNamespace> refused_;
  alignas(4096) uint8_t identify_buf_[4096];

  std::mutex ana_mu_;  // ana_cells_ membership (cells are created from any thread)
  std::unordered_map<uint32_t, std::shared_ptr<AnaCell>> ana_cells_;
  std::atomic<bool> ana_reporting_{false};
  std::atomic<uint32_t> ana_reads_{0};
  std::atomic<int64_t> ghost_hold_ns_{0};
  std::vector<uint8_t> ana_buf_;
  bool ana_reading_ = false;  // a read is out
  bool ana_again_ = false;    // read once more when it is back
  Reactor::TimerId anatt_timer_ = 0;
  // Expires with the controller: tasks posted from other threads check it (on the admin reactor,
  // where the controller is destroyed) before they touch `this`.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
  std::vector<uint8_t> ns_buf_;  // Changed Namespace List / Identify Namespace on a live controller
  bool ns_refreshing_ = false;
  bool ns_again_ = false;

  int64_t lost_at_ns_ = 0;
  uint32_t attempts_since_loss_ = 0;  // reconnect attempts since the loss (for the backoff)
  std::atomic<uint64_t> discovery_genctr_{0};
  std::atomic<uint32_t> reconnects_{0};
  Reactor::TimerId reconnect_timer_ = 0;
  Reactor::TimerId fast_fail_timer_ = 0;
  bool fast_fail_expired_ = false;  // since the loss; cleared when live again
  Reactor::TimerId keep_alive_timer_ = 0;
  Reactor::TimerId tick_timer_ = 0;
  Reactor::TimerId poll_timer_ = 0;  // CSTS.RDY / CSTS.SHST polls
  bool keep_alive_outstanding_ = false;
  uint64_t ka_answers_ = 0;       // IoAnswers() at the latest keep-alive period
  uint64_t ka_sent_answers_ = 0;  // IoAnswers() when the outstanding Keep Alive went out
  std::function<void()> shutdown_done_;
  absl::Status delete_reason_;
  uint32_t cc_ = 0;
};

}  // namespace nvmf_ublk::io

#endif  // NVMF_UBLK_IO_CONTROLLER_H_
