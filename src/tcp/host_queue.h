// The host side of one NVMe/TCP queue (admin or I/O) as a sans-I/O state machine:
//
//   Idle --Start()--> WaitIcResp --ICResp ok--> Connecting --Connect ok--> Live
//                                                  |                           ^
//                                         AUTHREQ set --> Authenticating --+ (DH-HMAC-CHAP done)
//     any state --protocol error / C2HTermReq / Connect rejected / authentication failed--> Failed
//
// Bytes in: Feed() (or RecvBuffer()/Commit() to receive in place). Bytes out: PendingSend() lists
// the next bytes to write, in order, as iovecs; SendComplete(n) reports how many were written. It
// never touches a file descriptor. Events go to a HostQueueObserver, synchronously from Feed(),
// SendComplete() and FailOutstanding(); the observer may call Submit() from inside them.
//
// Protocol behaviour (NVMe/TCP 1.0):
// - ICReq with our HPDA, MAXR2T and requested digests; the ICResp must grant exactly the requested
//   digests, PFV 0, CPDA <= 31 and MAXH2CDATA >= 4096 and a multiple of 4.
// - Fabrics Connect (in-capsule Connect data) with CNTLID 0xFFFF on the admin queue, or the admin
//   queue's CNTLID on I/O queues.
// - Writes up to the in-capsule limit go in the capsule; larger ones wait for R2Ts and are sent as
//   H2CData PDUs of at most MAXH2CDATA bytes, with several R2Ts outstanding when MAXR2T allows.
//   An R2T counts against MAXR2T (and its TTAG must not be reused) until all its data has been
//   handed to the socket: until then the controller cannot have received it. (The transport
//   handles completions in ring order, so a send is reported before any answer to it.)
//   H2C data PDUs honour CPDA (padding before the data). Connect goes in-capsule only when the
//   queue's in-capsule limit holds its 1024 data bytes; otherwise over R2T like any write.
// - C2HData lands in the command's buffer at DATAO, in order and within bounds; the SUCCESS flag
//   completes the command without a CapsuleResp, and is accepted only on a queue that disabled SQ
//   flow control at Connect (NVMe/TCP 1.0 §3.6.2.11: the controller may set it only then).
// - Command IDs are (generation << index_bits) | slot, and the slot freed longest ago is reused
//   first, so a late completion of an earlier use carries an old generation. A completion for a
//   free slot, an old or future generation, or a command whose capsule header has not yet been
//   handed to the socket is a protocol error, never delivered to any command.
// - A successful completion must come after all the command's data moved: for a write, every byte
//   requested by R2T and handed to the socket (in-capsule: the whole capsule), with no R2T still
//   owed; for a read, every byte received in C2HData. Otherwise it is a protocol error (the queue
//   fails and the command is re-issued by its owner), never "done" with data unsent or missing.
//   An error status may arrive earlier (a target may reject a command before taking its data).
// - A command completes only when its response is in AND all its bytes have been handed to the
//   socket, so neither its buffer nor its header storage is reused while a send may read it.
// - On a protocol error the H2CTermReq is not queued behind other PDUs: BeginTermination() drops
//   every unsent PDU except the rest of one already partly written (the stream must stay framed)
//   and puts the TermReq next, so a transport that writes PendingSend() sends it promptly.
// - In-band authentication (Base 2.0 §8.13.5): a Connect response with AUTHREQ set is followed by
//   the DH-HMAC-CHAP exchange (auth/dhchap.h) over Authentication Send / Receive on this queue;
//   the queue is live only once it succeeded. Without a host key such a queue fails with
//   kUnauthenticated; with a controller key (bidirectional) a controller that does not ask for
//   authentication is refused, as it could not be authenticated.
// - SQ flow control: at most queue_size - 1 commands in flight, and, unless disabled at Connect,
//   no more than the SQ (tracked through SQHD) can hold.
#ifndef NVMF_UBLK_TCP_HOST_QUEUE_H_
#define NVMF_UBLK_TCP_HOST_QUEUE_H_

#include <sys/uio.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "auth/dhchap.h"
#include "nvme/commands.h"
#include "nvme/spec.h"
#include "tcp/pdu.h"
#include "tcp/pdu_codec.h"
#include "tcp/pdu_parser.h"

namespace nvmf_ublk::tcp {

struct HostQueueOptions {
  uint16_t qid = 0;  // 0 = admin queue
  // SQ entries (Connect SQSIZE + 1), 2..kMaxQueueSize (larger values are clamped, keeping at
  // least 4 generation bits in every command ID).
  uint16_t queue_size = 32;
  uint32_t kato_ms = 0;        // Keep Alive Timeout sent in Connect (admin queue only)
  bool header_digest = false;  // request HDGST
  bool data_digest = false;    // request DDGST
  bool disable_sq_flow_control = false;
  uint32_t maxr2t = 4;  // R2Ts per command we accept at once (1..16), sent 0-based
  uint8_t hpda = 0;     // our data alignment for C2H data PDUs, dwords minus 1
  uint32_t in_capsule_data =
      8192;  // largest write sent in-capsule (admin: 8192; I/O: IOCCSZ*16-64)
  uint32_t max_c2h_data = 8u << 20;  // largest C2HData payload accepted in one PDU
  uint16_t cntlid = nvme::kAdminCntlidDynamic;
  std::string subnqn;
  std::string hostnqn;
  std::array<uint8_t, 16> hostid{};
  std::string name;  // for log lines, e.g. "nqn...:q1"
  // DH-HMAC-CHAP keys (null: none), shared by the queues of an association.
  std::shared_ptr<const auth::DhchapHostConfig> dhchap;
  uint16_t auth_transaction = 0;  // T_ID of this queue's authentication transaction
};

// What the ICResp granted.
struct Negotiated {
  bool header_digest = false;
  bool data_digest = false;
  uint32_t cpda_bytes = 4;
  uint32_t maxh2cdata = 0;
};

class HostQueueObserver {
 public:
  virtual ~HostQueueObserver() = default;
  // Connect succeeded; the queue accepts Submit(). `cntlid` is the controller ID it returned.
  virtual void OnQueueLive(uint16_t cntlid) = 0;
  // A submitted command finished. `error` is 0 when `cqe` is the controller's completion (whose
  // status may still be an NVMe error). Otherwise it is a negative errno for a host-detected
  // failure and `cqe` is synthesized with the CID: -EBADMSG data digest mismatch, -EIO the
  // controller completed a read without sending all its data, -ECONNABORTED the queue was torn
  // down.
  virtual void OnCommandDone(uint64_t cookie, const nvme::Cqe& cqe, int error) = 0;
  // The queue failed; called once. If an H2CTermReq is due it is already in PendingSend(): the
  // transport should write it out (best effort), close the connection, and call FailOutstanding().
  virtual void OnQueueFailed(const absl::Status& status) = 0;
};

class HostQueue final : private PduReceiver {
 public:
  static constexpr uint16_t kMaxQueueSize = 4096;
  enum class State { kIdle, kWaitIcResp, kConnecting, kAuthenticating, kLive, kFailed };
  static const char* ToString(State state);

  HostQueue(const HostQueueOptions& options, HostQueueObserver* observer);
  ~HostQueue() override;
  HostQueue(const HostQueue&) = delete;
  HostQueue& operator=(const HostQueue&) = delete;

  // Queues the ICReq. Fails (and sends nothing) on invalid options such as a malformed NQN.
  absl::Status Start();

  // Submits a command. `data`/`len` is the command's data buffer (direction from the opcode; len 0
  // means no data transfer); it must stay valid until OnCommandDone. Returns the CID, or -ENOTCONN
  // (not live), -EAGAIN (queue full), -EINVAL (buffer does not fit the command).
  int Submit(const nvme::Sqe& sqe, void* data, uint32_t len, uint64_t cookie);

  // Receive path.
  void Feed(const uint8_t* data, size_t len);
  std::span<uint8_t> RecvBuffer() { return parser_.RecvBuffer(); }
  void Commit(size_t n);

  // Send path: fills up to `max` iovecs with the next unsent bytes; returns how many were filled.
  // The memory stays valid until SendComplete() covers it.
  int PendingSend(iovec* iov, int max) const;
  bool HasPendingSend() const { return send_count_ > 0; }
  size_t PendingSendBytes() const;
  void SendComplete(size_t bytes);

  // After a protocol error (state failed with an H2CTermReq due): makes the TermReq the next PDU
  // of the stream, after the rest of the PDU being written, dropping every other unsent PDU. Call
  // it when no send is in flight. Returns whether there is anything to write (then write
  // PendingSend() as usual); false when no TermReq is due.
  bool BeginTermination();
  bool termination_due() const { return term_len_ > 0 && !term_queued_; }

  // After the connection is gone: completes every outstanding command with `error` (negative errno)
  // and drops pending sends. The queue stays failed.
  void FailOutstanding(int error);
  // Fails the queue from outside (transport error, timeout); OnQueueFailed follows. No TermReq.
  void Fail(const absl::Status& status);

  State state() const { return state_; }
  bool live() const { return state_ == State::kLive; }
  uint16_t cntlid() const { return cntlid_; }
  uint16_t qid() const { return options_.qid; }
  const Negotiated& negotiated() const { return negotiated_; }
  // Commands that can be in flight at once (queue_size - 1).
  uint32_t depth() const { return static_cast<uint32_t>(slots_.size()); }
  uint32_t outstanding() const { return outstanding_; }
  bool CanSubmit() const;
  // Calls fn(cid, cookie, const Sqe&) for each outstanding caller command (for timeouts/abort).
  template <typename Fn>
  void ForEachOutstanding(Fn&& fn) const {
    for (size_t i = 0; i < slots_.size(); ++i) {
      const Slot& s = slots_[i];
      if (s.busy && !s.internal) fn(s.cid, s.cookie, s.sqe());
    }
  }

 private:
  struct R2tRange {
    uint16_t ttag;
    uint32_t offset;
    uint32_t length;
  };
  static constexpr uint32_t kMaxR2t = 16;
  struct Slot {
    bool busy = false;
    bool internal = false;     // Connect or authentication, issued by the queue itself
    bool allow_short = false;  // may complete with less C2H data than its length
    bool in_capsule = false;
    bool response = false;      // response received, completion deferred until sends drain
    bool header_sent = false;   // the capsule's PDU header has been handed to the socket
    bool capsule_sent = false;  // ... and the whole capsule PDU, in-capsule data included
    nvme::DataDirection dir = nvme::DataDirection::kNone;
    uint16_t gen = 0;
    uint16_t cid = 0;
    uint64_t cookie = 0;
    uint8_t* data = nullptr;
    uint32_t len = 0;
    uint32_t received = 0;    // C2H bytes received in order
    uint32_t r2t_next = 0;    // next expected R2TO
    uint32_t r2t_count = 0;   // R2Ts in r2ts whose data is not all written yet
    uint32_t r2t_head = 0;    // the oldest of them
    uint32_t r2t_queued = 0;  // of those, from the head, whose data is all queued
    uint32_t h2c_sent = 0;    // bytes queued of the R2T after those
    bool h2c_queued = false;  // an H2CData PDU of this slot is in the send ring
    bool h2c_last = false;    // ... and it is the last of its R2T
    uint16_t sends = 0;       // send entries of this slot not yet written
    int error = 0;
    nvme::Cqe cqe{};
    R2tRange r2ts[kMaxR2t];
    alignas(8) uint8_t capsule[kMaxHeaderBytes];
    uint8_t capsule_ddgst[4];
    alignas(8) uint8_t h2c[kMaxHeaderBytes];
    uint8_t h2c_ddgst[4];
    const nvme::Sqe& sqe() const { return *reinterpret_cast<const nvme::Sqe*>(capsule + 8); }
  };
  enum class SendKind : uint8_t { kRaw, kCapsule, kH2C };
  struct SendEntry {
    const uint8_t* hdr;
    uint32_t hdr_len;
    const uint8_t* data;
    uint32_t data_len;
    const uint8_t* ddgst;  // 4 bytes or nullptr
    uint16_t slot;
    SendKind kind;
    uint32_t total() const { return hdr_len + data_len + (ddgst ? 4u : 0u); }
  };

  // PduReceiver.
  std::optional<PduError> OnPduHeader(const PduHeader& header, uint8_t** data_dest) override;
  std::optional<PduError> OnPduComplete(const PduHeader& header, bool data_digest_ok,
                                        const uint8_t* term_data) override;

  std::optional<PduError> OnIcResp(const IcRespPdu& resp);
  std::optional<PduError> OnCapsuleResp(const CapsuleRespPdu& resp);
  std::optional<PduError> OnR2T(const R2TPdu& r2t);
  // The outstanding command `cid` names, or an error naming what `what` (a PDU name) got wrong.
  Slot* LookupCid(uint16_t cid);
  std::optional<PduError> CheckCid(uint16_t cid, const char* what, uint32_t fei, Slot** out);
  // A successful completion of `s` now would complete it before its data moved: the error.
  std::optional<PduError> CheckSuccessAllowed(const Slot& s, const char* what, uint32_t fei);
  int SubmitInternal(const nvme::Sqe& sqe, void* data, uint32_t len, uint64_t cookie,
                     bool internal);
  void PushSend(const SendEntry& e);
  void QueueNextH2C(uint16_t index);
  void OnEntrySent(const SendEntry& e);
  void CompleteIfDone(uint16_t index);
  void Finish(uint16_t index);
  void OnConnectDone(const nvme::Cqe& cqe);
  // Issues the authentication command the exchange's step calls for, or ends the exchange.
  void AuthNext();
  void OnAuthCommandDone(const nvme::Cqe& cqe, uint32_t received);
  void AfterParse();
  void FailWithTermReq(const PduError& err);
  void SetState(State next);
  const char* NameOf(const Slot& s) const;

  HostQueueOptions options_;
  HostQueueObserver* observer_;
  PduParser parser_;
  State state_ = State::kIdle;
  Negotiated negotiated_;
  WireFormat wire_;  // how we encode H2C PDUs (from the ICResp)
  uint16_t cntlid_ = 0;
  bool peer_terminated_ = false;
  bool success_seen_ = false;  // a C2HData with SUCCESS completed a command (logged once)
  bool fail_notified_ = false;

  std::vector<Slot> slots_;
  std::vector<uint16_t> free_;  // free slot indices, a FIFO ring: oldest freed first
  uint32_t free_head_ = 0, free_count_ = 0;
  uint32_t index_bits_ = 0;
  uint32_t outstanding_ = 0;
  uint32_t sq_tail_ = 0, sq_head_ = 0;

  std::vector<SendEntry> send_ring_;
  uint32_t send_head_ = 0, send_count_ = 0;
  uint32_t head_sent_ = 0;  // bytes of the head entry already written

  alignas(8) uint8_t icreq_[sizeof(IcReqPdu)];
  alignas(8) uint8_t term_[kMaxHeaderBytes];
  uint32_t term_len_ = 0;     // an H2CTermReq is encoded in term_ and due
  bool term_queued_ = false;  // BeginTermination() put it in the send ring
  nvme::ConnectData connect_data_{};
  std::unique_ptr<auth::DhchapHost> dhchap_;
  std::vector<uint8_t> auth_buf_;  // the data of the authentication command in flight
  bool auth_sending_ = false;      // ... an Auth Send (else an Auth Receive)
};

}  // namespace nvmf_ublk::tcp

#endif  // NVMF_UBLK_TCP_HOST_QUEUE_H_
