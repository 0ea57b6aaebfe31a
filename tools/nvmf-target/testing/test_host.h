// Test hosts for the target's integration tests, over plain blocking-style sockets (poll + send/
// recv; independent of the initiator's io_uring engine):
//
// - TestQueue: the project's sans-I/O tcp::HostQueue driven over a TCP socket. One queue = one
//   connection; Connect() returns it live (ICReq/ICResp and Fabrics Connect done).
// - RawConnection: bytes in, whole controller PDUs out, for tests that must see or send exact PDUs
//   (malformed PDUs, C2HTermReq, SUCCESS flags, ICResp fields).
#ifndef NVMF_UBLK_TOOLS_NVMF_TARGET_TESTING_TEST_HOST_H_
#define NVMF_UBLK_TOOLS_NVMF_TARGET_TESTING_TEST_HOST_H_

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/unique_fd.h"
#include "nvme/commands.h"
#include "nvme/spec.h"
#include "tcp/host_queue.h"
#include "tcp/pdu.h"

namespace nvmf_ublk::target::testing {

inline constexpr char kHostNqn[] =
    "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555";

// Host options for queue `qid` of `subnqn` (queue size 32, KATO 0, host ID 0xA0..0xAF).
tcp::HostQueueOptions QueueOptions(const std::string& subnqn, uint16_t qid = 0,
                                   uint16_t cntlid = nvme::kAdminCntlidDynamic);

struct Completion {
  nvme::Cqe cqe{};
  int error = 0;  // host-detected failure (negative errno), see HostQueueObserver
  uint16_t status() const { return cqe.status.get() >> 1; }
  uint8_t sct() const { return nvme::StatusSct(status()); }
  uint8_t sc() const { return nvme::StatusSc(status()); }
  bool dnr() const { return nvme::StatusDnr(status()); }
  bool ok() const { return error == 0 && status() == 0; }
};

class TestQueue : private tcp::HostQueueObserver {
 public:
  // Connects to 127.0.0.1:port and brings the queue live. Fails with the queue's status (e.g. the
  // Connect status) otherwise.
  static absl::StatusOr<std::unique_ptr<TestQueue>> Connect(uint16_t port,
                                                            const tcp::HostQueueOptions& options,
                                                            int timeout_ms = 5000);
  ~TestQueue() override;

  // Submits and waits.
  absl::StatusOr<Completion> Run(const nvme::Sqe& sqe, void* data = nullptr, uint32_t len = 0,
                                 int timeout_ms = 5000);
  // Submits; returns a cookie for Wait().
  absl::StatusOr<uint64_t> Submit(const nvme::Sqe& sqe, void* data = nullptr, uint32_t len = 0);
  // Waits for a submitted command. kDeadlineExceeded on timeout (the command stays outstanding).
  absl::StatusOr<Completion> Wait(uint64_t cookie, int timeout_ms = 5000);
  // Runs the socket for up to `timeout_ms`; false once the connection is closed.
  bool Poll(int timeout_ms);
  // Waits until the target closes the connection (or the queue fails). True if it did.
  bool WaitClosed(int timeout_ms);

  bool closed() const { return closed_; }
  const absl::Status& failure() const { return failure_; }
  uint16_t cntlid() const { return queue_->cntlid(); }
  uint16_t last_cid() const { return last_cid_; }
  tcp::HostQueue& queue() { return *queue_; }

 private:
  TestQueue() = default;
  void OnQueueLive(uint16_t cntlid) override;
  void OnCommandDone(uint64_t cookie, const nvme::Cqe& cqe, int error) override;
  void OnQueueFailed(const absl::Status& status) override;
  void CloseSocket();

  UniqueFd fd_;
  std::unique_ptr<tcp::HostQueue> queue_;
  std::map<uint64_t, Completion> done_;
  uint64_t next_cookie_ = 1;
  uint16_t last_cid_ = 0;
  bool live_ = false;
  bool failed_ = false;
  bool closed_ = false;
  absl::Status failure_;
};

// Property Set CC (EN, IOSQES 6, IOCQES 4) and wait for CSTS.RDY.
absl::Status EnableController(TestQueue& admin);

// An admin queue (enabled) plus `io_queues` I/O queues of one controller.
struct Session {
  std::unique_ptr<TestQueue> admin;
  std::vector<std::unique_ptr<TestQueue>> io;
  TestQueue& io0() { return *io.at(0); }
};
// The admin queue uses io_options.dhchap too.
absl::StatusOr<Session> ConnectSession(uint16_t port, const std::string& subnqn, int io_queues = 1,
                                       const tcp::HostQueueOptions& io_options = {});

// --- Raw PDUs ----------------------------------------------------------------------------------

struct Pdu {
  tcp::PduType type;
  uint8_t flags;
  std::vector<uint8_t> header;  // CH + PSH (HLEN bytes)
  std::vector<uint8_t> data;    // payload (C2HData data, TermReq offending header)
  template <typename T>
  const T& as() const {
    return *reinterpret_cast<const T*>(header.data());
  }
};

class RawConnection {
 public:
  static absl::StatusOr<std::unique_ptr<RawConnection>> Connect(uint16_t port);
  ~RawConnection();

  absl::Status Send(std::span<const uint8_t> bytes);
  // The next controller PDU, parsed with a tcp::PduParser (controller-to-host direction, with the
  // digests set by SetDigests). kDeadlineExceeded on timeout, kUnavailable at EOF.
  absl::StatusOr<Pdu> Receive(int timeout_ms = 5000);
  // True if the target closes the connection within `timeout_ms` (after any pending PDUs).
  bool WaitEof(int timeout_ms = 5000);
  void SetDigests(bool header, bool data);

  // ICReq -> ICResp.
  absl::StatusOr<tcp::IcRespPdu> Handshake(uint8_t hpda = 0, uint8_t dgst = 0, uint32_t maxr2t = 0);
  // Sends a capsule with in-capsule data (SGL offset) or a transport SGL of `transport_len`.
  absl::Status SendCapsule(const nvme::Sqe& sqe, std::span<const uint8_t> in_capsule,
                           uint32_t transport_len = 0, uint8_t cpda = 0);
  // Fabrics Connect; returns the CapsuleResp's CQE.
  absl::StatusOr<nvme::Cqe> ConnectQueue(const std::string& subnqn, uint16_t qid, uint16_t cntlid,
                                         uint8_t cattr = 0, const std::string& hostnqn = kHostNqn);

  int fd() const { return fd_.get(); }

 private:
  struct State;  // the PDU parser and what it collected
  RawConnection();
  UniqueFd fd_;
  bool hdgst_ = false, ddgst_ = false;
  std::unique_ptr<State> state_;
};

// Bytes of "nothing important" with a pattern, for data verification.
std::vector<uint8_t> Pattern(size_t n, uint32_t seed);

}  // namespace nvmf_ublk::target::testing

#endif  // NVMF_UBLK_TOOLS_NVMF_TARGET_TESTING_TEST_HOST_H_
