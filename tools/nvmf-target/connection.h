// One NVMe/TCP connection (one queue) of the target, served by its own thread with a blocking
// socket:
//
//   WaitIcReq --ICReq ok--> WaitConnect --Connect ok--> Live
//     any state --malformed PDU--> C2HTermReq, Closing;  --EOF / Shutdown / fault--> Closing
//
// The thread polls the socket and an eventfd; other threads reach it only through Shutdown(),
// PostEvent() and AbortHeld(), which take mu_ and wake it. Everything else is owned by the thread.
// Received bytes go through a tcp::PduParser (host-to-controller direction), which validates each
// PDU and reports the FES/FEI a C2HTermReq carries. Responses are assembled with the pdu_codec
// encoders into one output buffer per batch of received bytes and written in order (DESIGN.md
// §8.8); responses held back by fault injection (delay, drop) wait in held_ until due or aborted.
//
// Command execution is split by queue type: connection.cc (transport, data movement, faults),
// admin_commands.cc (fabrics and admin), io_commands.cc (NVM I/O).
#ifndef NVMF_UBLK_TOOLS_NVMF_TARGET_CONNECTION_H_
#define NVMF_UBLK_TOOLS_NVMF_TARGET_CONNECTION_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "auth/dhchap.h"
#include "base/unique_fd.h"
#include "config.h"
#include "nvme/commands.h"
#include "nvme/spec.h"
#include "tcp/pdu.h"
#include "tcp/pdu_codec.h"
#include "tcp/pdu_parser.h"

namespace nvmf_ublk::target {

class Controller;
class Target;
struct FaultState;

class Connection final : private tcp::PduReceiver {
 public:
  enum class State { kWaitIcReq, kWaitConnect, kLive, kClosing };
  static const char* ToString(State state);

  // `local_addr`/`local_adrfam`: the socket's local address (for wildcard ports in the discovery
  // log); `peer`: "addr:port" for log lines.
  Connection(Target* target, size_t port_index, UniqueFd sock, std::string local_addr,
             uint8_t local_adrfam, std::string peer);
  ~Connection() override;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void Start();
  // Any thread: closes the socket for I/O so the thread ends soon. Does not wait.
  void Shutdown();
  void Join();
  bool done() const { return done_.load(); }

  // Any thread (under the controller's lock): queues an asynchronous event for an outstanding AER.
  void PostEvent(const nvme::AsyncEvent& event);
  // Any thread: aborts the held (delayed or dropped) command `cid`: it completes now with "Command
  // Abort Requested". False if no such command is held.
  bool AbortHeld(uint16_t cid);

 private:
  // A command from fetch to completion.
  struct Request {
    nvme::Sqe sqe{};
    uint16_t cid = 0;
    nvme::DataDirection dir = nvme::DataDirection::kNone;
    uint32_t xfer_len = 0;      // SGL length
    std::vector<uint8_t> data;  // host data (write) or data to return (read)
    bool digest_error = false;  // a data digest of the host's data did not match
    bool track = false;         // CID is in active_cids_ (released when the response is sent)
    uint16_t status = 0;        // Status Field
    uint32_t dw0 = 0, dw1 = 0;
    // Fault decisions taken at fetch.
    bool drop = false;
    uint32_t delay_ms = 0;
    Malice malice = Malice::kNone;
    std::shared_ptr<FaultState> fault;
  };
  // A write waiting for its data through R2T -> H2CData.
  struct PendingWrite {
    Request req;
    uint32_t requested = 0;    // bytes asked for by R2Ts so far
    uint32_t received = 0;     // bytes of finished R2Ts
    uint32_t outstanding = 0;  // R2Ts not yet fully answered
    uint32_t end = 0;          // bytes to ask for (less than the length only for malice)
  };
  struct R2tState {
    uint16_t cid;
    uint32_t offset;
    uint32_t length;
    uint32_t received = 0;
  };
  // A response held back by fault injection.
  struct Held {
    int64_t deadline_ns;  // INT64_MAX: dropped (sent only if aborted)
    uint16_t cid;
    nvme::Cqe cqe;  // to rebuild the response when aborted
    std::vector<uint8_t> bytes;
  };
  enum class Outcome { kRespond, kPending, kNone };

  void Run();
  bool ReceiveSome(std::vector<uint8_t>& buf);
  // Reads (non-blocking) and handles what the socket still holds, before a close.
  void DrainInput(std::vector<uint8_t>& buf);
  void FlushOutput();
  bool SendAll(const uint8_t* data, size_t len);
  int PollTimeoutMs();
  void SendDueHeld();
  void DeliverEvents();
  void CheckKeepAlive();
  void Cleanup();
  void SetState(State next);
  void Close(const std::string& why);

  // tcp::PduReceiver.
  std::optional<tcp::PduError> OnPduHeader(const tcp::PduHeader& header,
                                           uint8_t** data_dest) override;
  std::optional<tcp::PduError> OnPduComplete(const tcp::PduHeader& header, bool data_digest_ok,
                                             const uint8_t* term_data) override;
  std::optional<tcp::PduError> OnIcReq(const tcp::IcReqPdu& req);
  std::optional<tcp::PduError> OnCapsule(const nvme::Sqe& sqe, bool data_digest_ok,
                                         const tcp::PduHeader& header);
  std::optional<tcp::PduError> OnH2CDataHeader(const tcp::PduHeader& header, uint8_t** dest);
  void OnH2CDataComplete(const tcp::DataPdu& pdu, bool data_digest_ok);
  void IssueR2Ts(PendingWrite& w);
  // Sends a C2HTermReq (nothing else follows) and closes.
  void TerminateConnection(tcp::Fes fes, uint32_t fei, std::span<const uint8_t> offending,
                           const std::string& why);

  // Checks data transfer and SGL of a fetched command; false if it was completed with an error.
  bool ValidateTransfer(Request& req, uint32_t in_capsule_len);
  void Execute(Request req);
  void Respond(Request& req);
  void EncodeCapsuleResp(const nvme::Cqe& cqe, std::vector<uint8_t>* out) const;
  nvme::Cqe MakeCqe(const Request& req) const;

  // malice.cc: deliberate protocol violations (FaultConfig::malice).
  void MaybeArmMalice(Request& req, FaultState& fs);
  // Answers `req` with its violation; false when the normal response should follow.
  bool RespondMaliciously(Request& req);
  // R2T writes: asks for the data the wrong way; false when the normal R2Ts should follow.
  bool IssueMaliciousR2Ts(PendingWrite& w);
  void ApplyIcRespMalice(tcp::IcRespPdu* resp);
  // Identify (CNS `sub`) or Get Log Page (LID `sub`) data in `data`: puts an out-of-range value in
  // it when an admin-answer kind is set for it and its budget allows.
  void ApplyAdminAnswerMalice(nvme::AdminOpcode opcode, uint8_t sub, uint8_t* data, size_t len);
  uint16_t CidNotOutstanding(uint16_t near_cid) const;

  // admin_commands.cc
  Outcome ExecuteFabrics(Request& req);
  Outcome ExecuteConnect(Request& req);
  Outcome ExecuteAuth(Request& req, bool send);
  Outcome ExecuteAdmin(Request& req);
  void ExecuteIdentify(Request& req);
  void ExecuteGetLogPage(Request& req);
  void ExecuteSetFeatures(Request& req);
  void ExecuteGetFeatures(Request& req);
  void WriteCc(uint32_t value);
  // io_commands.cc
  void ExecuteIo(Request& req);

  Target* const target_;
  const size_t port_index_;
  UniqueFd sock_;
  UniqueFd wake_fd_;
  const std::string local_addr_;
  const uint8_t local_adrfam_;
  const std::string peer_;
  std::string name_;  // for log lines: "peer qN cntlid"

  State state_ = State::kWaitIcReq;
  tcp::PduParser parser_;
  TransportConfig transport_;
  tcp::WireFormat wire_;  // how we encode C2H PDUs (HPDA, negotiated digests)
  uint64_t host_maxr2t_ = 1;
  bool send_failed_ = false;
  bool stalled_ = false;  // malice: output stops at stall_at_ bytes of out_
  size_t stall_at_ = 0;
  bool draining_ = false;  // DrainInput: EAGAIN ends it quietly
  std::vector<uint8_t> out_;

  // DH-HMAC-CHAP of this queue when its host must authenticate; until it succeeded only
  // Authentication Send / Receive (and Disconnect) are executed.
  std::unique_ptr<auth::DhchapController> auth_;
  std::shared_ptr<Controller> ctrl_;
  uint16_t qid_ = 0;
  uint32_t sq_entries_ = 1;
  uint32_t sq_head_ = 0;
  bool sq_flow_control_disabled_ = false;
  uint64_t commands_ = 0;  // commands subject to faults, for cut_after / drop_every
  int64_t last_admin_cmd_ns_ = 0;
  // What restarts the keep-alive timer: the latest admin command, or with TBKAS any command.
  int64_t LastKeepAliveNs() const;

  std::vector<uint8_t> capsule_data_;        // in-capsule data of the PDU being received
  std::set<uint16_t> active_cids_;           // fetched, not yet answered
  std::map<uint16_t, PendingWrite> writes_;  // by CID
  std::map<uint16_t, R2tState> r2ts_;        // by TTAG
  uint16_t next_ttag_ = 0;
  std::vector<uint16_t> aer_cids_;  // outstanding Asynchronous Event Requests

  std::mutex mu_;  // held_, events_
  std::vector<Held> held_;
  std::deque<nvme::AsyncEvent> events_;

  std::atomic<bool> shutdown_{false};
  std::atomic<bool> done_{false};
  std::thread thread_;
};

}  // namespace nvmf_ublk::target

#endif  // NVMF_UBLK_TOOLS_NVMF_TARGET_CONNECTION_H_
