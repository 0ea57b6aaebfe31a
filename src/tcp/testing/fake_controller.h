// A scripted NVMe/TCP controller for unit tests of the host queue: it parses what the host sends
// (with the real PduParser, so host output is validated too) and builds controller PDUs on demand.
#ifndef NVMF_UBLK_TCP_TESTING_FAKE_CONTROLLER_H_
#define NVMF_UBLK_TCP_TESTING_FAKE_CONTROLLER_H_

#include <sys/uio.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "nvme/spec.h"
#include "tcp/host_queue.h"
#include "tcp/pdu_codec.h"
#include "tcp/pdu_parser.h"

namespace nvmf_ublk::tcp::testing {

class FakeController : public PduReceiver {
 public:
  struct Command {
    nvme::Sqe sqe;
    std::vector<uint8_t> data;  // in-capsule data
    uint8_t flags;
    uint8_t pdo;
  };
  struct H2C {
    DataPdu hdr;
    std::vector<uint8_t> data;
    uint8_t pdo;
  };

  FakeController() : parser_(PduParserOptions{StreamDirection::kHostToController}, this) {}

  // Digests/alignment the controller grants in its ICResp and then expects.
  void Configure(bool hdgst, bool ddgst, uint8_t cpda, uint8_t hpda = 0) {
    hdgst_ = hdgst;
    ddgst_ = ddgst;
    cpda_ = cpda;
    wire_ = WireFormat{hdgst, ddgst, PdaBytes(hpda)};
  }

  // Moves everything the host has to send into this controller, `chunk` bytes at a time, and
  // acknowledges the sends unless `ack` is false.
  // A failed queue's H2CTermReq is put next first, as the transport does.
  void Pump(HostQueue& q, size_t chunk = SIZE_MAX, bool ack = true) {
    if (q.termination_due()) q.BeginTermination();
    while (q.HasPendingSend() && !parser_.failed()) {
      iovec iov[64];
      const int n = q.PendingSend(iov, 64);
      size_t total = 0;
      for (int i = 0; i < n; ++i) {
        const auto* p = static_cast<const uint8_t*>(iov[i].iov_base);
        for (size_t off = 0; off < iov[i].iov_len;) {
          const size_t len = std::min(chunk, iov[i].iov_len - off);
          parser_.Feed(p + off, len);
          off += len;
        }
        total += iov[i].iov_len;
      }
      if (!ack) return;
      q.SendComplete(total);
    }
  }

  // Delivers queued controller bytes to the host, `chunk` bytes at a time.
  void Deliver(HostQueue& q, size_t chunk = SIZE_MAX) {
    std::vector<uint8_t> bytes;
    bytes.swap(out_);
    for (size_t off = 0; off < bytes.size();) {
      const size_t len = std::min(chunk, bytes.size() - off);
      q.Feed(bytes.data() + off, len);
      off += len;
    }
  }

  void IcResp(uint32_t maxh2cdata = 65536, std::optional<uint8_t> dgst = std::nullopt,
              uint16_t pfv = 0) {
    uint8_t h[kMaxHeaderBytes];
    const uint8_t d = dgst ? *dgst : static_cast<uint8_t>((hdgst_ ? 1 : 0) | (ddgst_ ? 2 : 0));
    const uint32_t n = EncodeIcResp(h, cpda_, d, maxh2cdata);
    reinterpret_cast<IcRespPdu*>(h)->pfv.set(pfv);
    out_.insert(out_.end(), h, h + n);
    PduParserOptions o = parser_.options();
    o.header_digest = hdgst_;
    o.data_digest = ddgst_;
    o.data_alignment = PdaBytes(cpda_);
    parser_.Reconfigure(o);
  }
  void Resp(uint16_t cid, uint16_t status_field = 0, uint32_t dw0 = 0, uint16_t sqhd = 0xFFFF) {
    nvme::Cqe cqe{};
    cqe.cid.set(cid);
    cqe.dw0.set(dw0);
    cqe.sq_head.set(sqhd);
    cqe.status.set(static_cast<uint16_t>(status_field << 1));
    uint8_t h[kMaxHeaderBytes];
    const uint32_t n = EncodeCapsuleResp(h, cqe, wire_);
    AppendPdu(&out_, h, n, {}, wire_);
  }
  void C2H(uint16_t cid, uint32_t offset, std::span<const uint8_t> data, uint8_t flags = 0) {
    uint8_t h[kMaxHeaderBytes];
    const uint32_t n = EncodeDataPdu(h, PduType::kC2HData, flags, cid, 0, offset,
                                     static_cast<uint32_t>(data.size()), wire_);
    AppendPdu(&out_, h, n, data, wire_);
  }
  void R2T(uint16_t cid, uint16_t ttag, uint32_t offset, uint32_t len) {
    uint8_t h[kMaxHeaderBytes];
    const uint32_t n = EncodeR2T(h, cid, ttag, offset, len, wire_);
    AppendPdu(&out_, h, n, {}, wire_);
  }
  void TermReq(Fes fes, uint32_t fei) {
    uint8_t h[kMaxHeaderBytes];
    const uint32_t n = EncodeTermReq(h, PduType::kC2HTermReq, fes, fei, {});
    out_.insert(out_.end(), h, h + n);
  }
  void Raw(std::span<const uint8_t> bytes) { out_.insert(out_.end(), bytes.begin(), bytes.end()); }

  // Completes the Connect that the host sent last, granting `cntlid`.
  void AcceptConnect(uint16_t cntlid) { Resp(commands.back().sqe.cid.get(), 0, cntlid); }

  // Brings `q` to live: Start, ICReq/ICResp, the Connect (its data over R2T when the queue's
  // in-capsule limit is below 1024 bytes), the Connect response granting `cntlid`. Every byte moves
  // `chunk` at a time. Leaves commands/h2c with the Connect only; an error names the step that
  // failed.
  absl::Status BringUp(HostQueue& q, uint32_t maxh2cdata = 65536, size_t chunk = SIZE_MAX,
                       uint16_t cntlid = 0x0042) {
    if (absl::Status s = q.Start(); !s.ok()) return s;
    Pump(q, chunk);
    if (!icreq) return absl::InternalError("no ICReq sent");
    IcResp(maxh2cdata);
    Deliver(q, chunk);
    if (q.state() != HostQueue::State::kConnecting) return absl::InternalError("ICResp refused");
    Pump(q, chunk);
    if (commands.size() != 1) return absl::InternalError("no single Connect command sent");
    if (commands[0].sqe.dptr.sgl_id == nvme::kSglIdTransport) {
      R2T(commands[0].sqe.cid.get(), 0x77, 0, 1024);
      Deliver(q, chunk);
      Pump(q, chunk);
      if (h2c.size() != 1 || h2c[0].data.size() != 1024) {
        return absl::InternalError("Connect data not sent over R2T");
      }
      h2c.clear();
    }
    AcceptConnect(cntlid);
    Deliver(q, chunk);
    if (!q.live())
      return absl::InternalError(
          absl::StrCat("not live after Connect: ", HostQueue::ToString(q.state())));
    return absl::OkStatus();
  }

  // PduReceiver.
  std::optional<PduError> OnPduHeader(const PduHeader& h, uint8_t** dest) override {
    scratch_.assign(h.data_len, 0);
    *dest = scratch_.data();
    return std::nullopt;
  }
  std::optional<PduError> OnPduComplete(const PduHeader& h, bool ddgst_ok,
                                        const uint8_t* term) override {
    if (!ddgst_ok) ++bad_data_digests;
    switch (h.type) {
      case PduType::kIcReq:
        icreq = h.as<IcReqPdu>();
        break;
      case PduType::kCapsuleCmd:
        commands.push_back(Command{h.as<CapsuleCmdPdu>().sqe, scratch_, h.flags, h.pdo});
        break;
      case PduType::kH2CData:
        h2c.push_back(H2C{h.as<DataPdu>(), scratch_, h.pdo});
        break;
      case PduType::kH2CTermReq:
        termreq = h.as<TermReqPdu>();
        termreq_data.assign(term, term + h.data_len);
        break;
      default:
        break;
    }
    return std::nullopt;
  }

  std::optional<IcReqPdu> icreq;
  std::vector<Command> commands;
  std::vector<H2C> h2c;
  std::optional<TermReqPdu> termreq;
  std::vector<uint8_t> termreq_data;
  int bad_data_digests = 0;
  const PduParser& parser() const { return parser_; }

 private:
  PduParser parser_;
  bool hdgst_ = false, ddgst_ = false;
  uint8_t cpda_ = 0;
  WireFormat wire_;
  std::vector<uint8_t> out_;
  std::vector<uint8_t> scratch_;
};

}  // namespace nvmf_ublk::tcp::testing

#endif  // NVMF_UBLK_TCP_TESTING_FAKE_CONTROLLER_H_
