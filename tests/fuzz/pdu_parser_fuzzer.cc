// Fuzzes the NVMe/TCP receive path: the PDU parser on its own (both directions, any digest and
// alignment settings), and a host queue driven through ICResp, Connect and live I/O by
// controller bytes chosen by the fuzzer. Input layout:
//   byte 0: mode (bit 0: raw parser vs host queue), digests (bits 1-2), alignment (bits 3-5)
//   byte 1: fragment size for feeding (1..256)
//   rest:   the controller's byte stream
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "base/log.h"
#include "nvme/commands.h"
#include "tcp/host_queue.h"
#include "tcp/pdu_parser.h"

namespace {

using namespace nvmf_ublk;

class Sink : public tcp::PduReceiver {
 public:
  std::optional<tcp::PduError> OnPduHeader(const tcp::PduHeader& h, uint8_t** dest) override {
    buf_.resize(h.data_len);
    *dest = buf_.data();
    return std::nullopt;
  }
  std::optional<tcp::PduError> OnPduComplete(const tcp::PduHeader&, bool, const uint8_t*) override {
    return std::nullopt;
  }

 private:
  std::vector<uint8_t> buf_;
};

class Observer : public tcp::HostQueueObserver {
 public:
  tcp::HostQueue* q = nullptr;
  std::vector<uint8_t> read_buf = std::vector<uint8_t>(16384);
  std::vector<uint8_t> write_buf = std::vector<uint8_t>(16384, 0x5A);
  int done = 0;
  void SubmitSome() {
    q->Submit(nvme::BuildRead(1, 0, 8), read_buf.data(), 4096, 1);
    q->Submit(nvme::BuildWrite(1, 0, 32, false), write_buf.data(), 16384, 2);
    q->Submit(nvme::BuildWrite(1, 0, 1, true), write_buf.data(), 512, 3);
    q->Submit(nvme::BuildFlush(1), nullptr, 0, 4);
  }
  void OnQueueLive(uint16_t) override { SubmitSome(); }
  void OnCommandDone(uint64_t, const nvme::Cqe&, int) override {
    if (++done < 64) SubmitSome();
  }
  void OnQueueFailed(const absl::Status&) override {}
};

void Drain(tcp::HostQueue& q) {
  while (q.HasPendingSend()) {
    iovec iov[16];
    const int n = q.PendingSend(iov, 16);
    size_t total = 0;
    for (int i = 0; i < n; ++i) total += iov[i].iov_len;
    q.SendComplete(total);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Rejected streams are the point here: keep the expected warnings out of the fuzzer's output.
  nvmf_ublk::SetMinLogLevel(nvmf_ublk::LogLevel::kFatal);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t mode = data[0];
  const size_t frag = size_t{data[1]} + 1;
  data += 2;
  size -= 2;
  const bool hd = mode & 2, dd = mode & 4;
  const uint8_t pda = (mode >> 3) & 7;

  if ((mode & 1) == 0) {
    Sink sink;
    tcp::PduParser parser(
        tcp::PduParserOptions{(mode & 0x40) ? tcp::StreamDirection::kHostToController
                                            : tcp::StreamDirection::kControllerToHost,
                              hd, dd, tcp::PdaBytes(pda), 65536},
        &sink);
    for (size_t off = 0; off < size && !parser.failed(); off += frag) {
      parser.Feed(data + off, std::min(frag, size - off));
    }
    if (parser.failed()) (void)parser.offending_header();
    return 0;
  }

  tcp::HostQueueOptions o;
  o.qid = 1;
  o.queue_size = 8;
  o.header_digest = hd;
  o.data_digest = dd;
  o.in_capsule_data = 1024;
  o.maxr2t = 2;
  o.subnqn = "nqn.2026-01.io.fuzz:sub";
  o.hostnqn = "nqn.2026-01.io.fuzz:host";
  o.cntlid = 1;
  Observer obs;
  tcp::HostQueue q(o, &obs);
  obs.q = &q;
  if (!q.Start().ok()) return 0;
  Drain(q);
  for (size_t off = 0; off < size && q.state() != tcp::HostQueue::State::kFailed; off += frag) {
    q.Feed(data + off, std::min(frag, size - off));
    Drain(q);
  }
  q.FailOutstanding(-ECONNABORTED);
  return 0;
}
