#include "testing/test_host.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>

#include "absl/strings/str_cat.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/status.h"
#include "tcp/pdu_codec.h"
#include "tcp/pdu_parser.h"

namespace nvmf_ublk::target::testing {
namespace {

int64_t NowMs() { return MonotonicNanos() / 1'000'000; }

// Tests print warnings and errors only; NVMF_TARGET_TEST_LOG=debug|info shows the target's lines.
const bool kLogLevelSet = [] {
  LogLevel level = LogLevel::kWarning;
  if (const char* env = getenv("NVMF_TARGET_TEST_LOG")) ParseLogLevel(env, &level);
  SetMinLogLevel(level);
  return true;
}();

absl::StatusOr<UniqueFd> ConnectTcp(uint16_t port) {
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoToStatus(errno, "socket");
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    return ErrnoToStatus(errno, absl::StrCat("connect 127.0.0.1:", port));
  }
  const int one = 1;
  setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  fcntl(fd.get(), F_SETFL, fcntl(fd.get(), F_GETFL) | O_NONBLOCK);
  return fd;
}

}  // namespace

std::vector<uint8_t> Pattern(size_t n, uint32_t seed) {
  std::vector<uint8_t> v(n);
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1103515245u + 12345u;
    v[i] = static_cast<uint8_t>(x >> 16);
  }
  return v;
}

tcp::HostQueueOptions QueueOptions(const std::string& subnqn, uint16_t qid, uint16_t cntlid) {
  tcp::HostQueueOptions o;
  o.qid = qid;
  o.queue_size = 32;
  o.subnqn = subnqn;
  o.hostnqn = kHostNqn;
  for (int i = 0; i < 16; ++i) o.hostid[i] = static_cast<uint8_t>(0xA0 + i);
  o.cntlid = cntlid;
  o.name = absl::StrCat("test-host q", qid);
  return o;
}

// --- TestQueue ---------------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<TestQueue>> TestQueue::Connect(uint16_t port,
                                                              const tcp::HostQueueOptions& options,
                                                              int timeout_ms) {
  auto q = std::unique_ptr<TestQueue>(new TestQueue());
  ASSIGN_OR_RETURN(q->fd_, ConnectTcp(port));
  tcp::HostQueueObserver* observer = q.get();  // private base: accessible here
  q->queue_ = std::make_unique<tcp::HostQueue>(options, observer);
  RETURN_IF_ERROR(q->queue_->Start());
  const int64_t deadline = NowMs() + timeout_ms;
  while (!q->live_ && !q->closed_) {
    const int64_t left = deadline - NowMs();
    if (left <= 0) return absl::DeadlineExceededError("queue did not become live");
    q->Poll(static_cast<int>(std::min<int64_t>(left, 50)));
  }
  if (!q->live_) {
    return q->failure_.ok() ? absl::UnavailableError("connection closed") : q->failure_;
  }
  return q;
}

TestQueue::~TestQueue() = default;

void TestQueue::OnQueueLive(uint16_t) { live_ = true; }

void TestQueue::OnCommandDone(uint64_t cookie, const nvme::Cqe& cqe, int error) {
  done_[cookie] = Completion{cqe, error};
}

void TestQueue::OnQueueFailed(const absl::Status& status) {
  failed_ = true;
  if (failure_.ok()) failure_ = status;
}

void TestQueue::CloseSocket() {
  if (closed_) return;
  closed_ = true;
  if (!failed_) queue_->Fail(absl::UnavailableError("the target closed the connection"));
  queue_->FailOutstanding(-ECONNRESET);
  fd_.reset();
}

bool TestQueue::Poll(int timeout_ms) {
  if (closed_) return false;
  pollfd p{fd_.get(), static_cast<int16_t>(POLLIN | (queue_->HasPendingSend() ? POLLOUT : 0)), 0};
  const int n = poll(&p, 1, timeout_ms);
  if (n < 0) {
    if (errno == EINTR) return true;
    CloseSocket();
    return false;
  }
  if (n == 0) return true;
  if (p.revents & POLLOUT) {
    iovec iov[64];
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(queue_->PendingSend(iov, 64));
    const ssize_t w = sendmsg(fd_.get(), &msg, MSG_NOSIGNAL);
    if (w > 0) {
      queue_->SendComplete(static_cast<size_t>(w));
    } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
      CloseSocket();
      return false;
    }
  }
  if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
    uint8_t buf[64 * 1024];
    const ssize_t r = recv(fd_.get(), buf, sizeof(buf), 0);
    if (r > 0) {
      queue_->Feed(buf, static_cast<size_t>(r));
    } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
      CloseSocket();
      return false;
    }
  }
  if (failed_) {
    // Best effort: an H2CTermReq may be pending.
    iovec iov[8];
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(queue_->PendingSend(iov, 8));
    if (msg.msg_iovlen > 0) (void)sendmsg(fd_.get(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    CloseSocket();
    return false;
  }
  return true;
}

absl::StatusOr<uint64_t> TestQueue::Submit(const nvme::Sqe& sqe, void* data, uint32_t len) {
  if (closed_) return absl::UnavailableError(absl::StrCat("queue closed: ", failure_.message()));
  const uint64_t cookie = next_cookie_++;
  const int cid = queue_->Submit(sqe, data, len, cookie);
  if (cid < 0) return ErrnoToStatus(cid, "HostQueue::Submit");
  last_cid_ = static_cast<uint16_t>(cid);
  return cookie;
}

absl::StatusOr<Completion> TestQueue::Wait(uint64_t cookie, int timeout_ms) {
  const int64_t deadline = NowMs() + timeout_ms;
  while (true) {
    auto it = done_.find(cookie);
    if (it != done_.end()) {
      Completion c = it->second;
      done_.erase(it);
      return c;
    }
    if (closed_) return absl::UnavailableError(absl::StrCat("queue closed: ", failure_.message()));
    const int64_t left = deadline - NowMs();
    if (left <= 0) return absl::DeadlineExceededError("command did not complete");
    Poll(static_cast<int>(std::min<int64_t>(left, 50)));
  }
}

absl::StatusOr<Completion> TestQueue::Run(const nvme::Sqe& sqe, void* data, uint32_t len,
                                          int timeout_ms) {
  ASSIGN_OR_RETURN(uint64_t cookie, Submit(sqe, data, len));
  return Wait(cookie, timeout_ms);
}

bool TestQueue::WaitClosed(int timeout_ms) {
  const int64_t deadline = NowMs() + timeout_ms;
  while (!closed_) {
    const int64_t left = deadline - NowMs();
    if (left <= 0) return false;
    Poll(static_cast<int>(std::min<int64_t>(left, 50)));
  }
  return true;
}

absl::Status EnableController(TestQueue& admin) {
  const uint32_t cc = nvme::kCcEnable | nvme::kCcIosqes | nvme::kCcIocqes;
  ASSIGN_OR_RETURN(Completion set, admin.Run(nvme::BuildPropertySet(nvme::Property::kCc, cc)));
  if (!set.ok()) return absl::InternalError(absl::StrCat("Property Set CC: status ", set.status()));
  for (int i = 0; i < 100; ++i) {
    ASSIGN_OR_RETURN(Completion get, admin.Run(nvme::BuildPropertyGet(nvme::Property::kCsts)));
    if (!get.ok()) return absl::InternalError("Property Get CSTS failed");
    if (nvme::PropertyValue(get.cqe) & nvme::kCstsReady) return absl::OkStatus();
    admin.Poll(10);
  }
  return absl::DeadlineExceededError("CSTS.RDY did not come");
}

absl::StatusOr<Session> ConnectSession(uint16_t port, const std::string& subnqn, int io_queues,
                                       const tcp::HostQueueOptions& io_options) {
  Session s;
  tcp::HostQueueOptions admin = QueueOptions(subnqn);
  admin.dhchap = io_options.dhchap;
  ASSIGN_OR_RETURN(s.admin, TestQueue::Connect(port, admin));
  RETURN_IF_ERROR(EnableController(*s.admin));
  for (int i = 1; i <= io_queues; ++i) {
    tcp::HostQueueOptions o = io_options.subnqn.empty() ? QueueOptions(subnqn) : io_options;
    o.qid = static_cast<uint16_t>(i);
    o.cntlid = s.admin->cntlid();
    o.kato_ms = 0;
    o.name = absl::StrCat("test-host q", i);
    ASSIGN_OR_RETURN(std::unique_ptr<TestQueue> q, TestQueue::Connect(port, o));
    s.io.push_back(std::move(q));
  }
  return s;
}

// --- RawConnection -----------------------------------------------------------------------------

namespace {

class Collector : public tcp::PduReceiver {
 public:
  std::optional<tcp::PduError> OnPduHeader(const tcp::PduHeader& h, uint8_t** dest) override {
    current_.type = h.type;
    current_.flags = h.flags;
    current_.header.assign(h.bytes, h.bytes + h.hlen);
    current_.data.assign(h.data_len, 0);
    if (h.data_len > 0) *dest = current_.data.data();
    return std::nullopt;
  }
  std::optional<tcp::PduError> OnPduComplete(const tcp::PduHeader& h, bool ok,
                                             const uint8_t* term) override {
    if (term != nullptr) current_.data.assign(term, term + h.data_len);
    if (!ok) current_.flags |= 0x80;  // marks a data digest mismatch for the test
    pdus.push_back(std::move(current_));
    current_ = Pdu{};
    return std::nullopt;
  }
  std::deque<Pdu> pdus;

 private:
  Pdu current_{};
};

}  // namespace

struct RawConnection::State {
  Collector collector;
  tcp::PduParser parser{
      tcp::PduParserOptions{tcp::StreamDirection::kControllerToHost, false, false, 4, 16u << 20},
      &collector};
};

RawConnection::RawConnection() : state_(std::make_unique<State>()) {}

absl::StatusOr<std::unique_ptr<RawConnection>> RawConnection::Connect(uint16_t port) {
  auto c = std::unique_ptr<RawConnection>(new RawConnection());
  ASSIGN_OR_RETURN(c->fd_, ConnectTcp(port));
  return c;
}

RawConnection::~RawConnection() = default;

void RawConnection::SetDigests(bool header, bool data) {
  hdgst_ = header;
  ddgst_ = data;
  State& st = *state_;
  tcp::PduParserOptions o = st.parser.options();
  o.header_digest = header;
  o.data_digest = data;
  st.parser.Reconfigure(o);
}

absl::Status RawConnection::Send(std::span<const uint8_t> bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t n = send(fd_.get(), bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      pollfd p{fd_.get(), POLLOUT, 0};
      poll(&p, 1, 100);
      continue;
    }
    if (n <= 0) return ErrnoToStatus(errno, "send");
    off += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::StatusOr<Pdu> RawConnection::Receive(int timeout_ms) {
  State& st = *state_;
  const int64_t deadline = NowMs() + timeout_ms;
  while (st.collector.pdus.empty()) {
    if (st.parser.failed()) {
      return absl::DataLossError(
          absl::StrCat("bad PDU from the target: ", st.parser.error().message));
    }
    const int64_t left = deadline - NowMs();
    if (left <= 0) return absl::DeadlineExceededError("no PDU from the target");
    pollfd p{fd_.get(), POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    uint8_t buf[64 * 1024];
    const ssize_t n = recv(fd_.get(), buf, sizeof(buf), 0);
    if (n == 0) return absl::UnavailableError("EOF");
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return ErrnoToStatus(errno, "recv");
    }
    st.parser.Feed(buf, static_cast<size_t>(n));
  }
  Pdu pdu = std::move(st.collector.pdus.front());
  st.collector.pdus.pop_front();
  return pdu;
}

bool RawConnection::WaitEof(int timeout_ms) {
  const int64_t deadline = NowMs() + timeout_ms;
  while (true) {
    const int64_t left = deadline - NowMs();
    if (left <= 0) return false;
    pollfd p{fd_.get(), POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    uint8_t buf[4096];
    const ssize_t n = recv(fd_.get(), buf, sizeof(buf), 0);
    if (n == 0 || (n < 0 && errno == ECONNRESET)) return true;
  }
}

absl::StatusOr<tcp::IcRespPdu> RawConnection::Handshake(uint8_t hpda, uint8_t dgst,
                                                        uint32_t maxr2t) {
  uint8_t hdr[tcp::kMaxHeaderBytes];
  const uint32_t n = tcp::EncodeIcReq(hdr, hpda, dgst, maxr2t);
  RETURN_IF_ERROR(Send({hdr, n}));
  ASSIGN_OR_RETURN(Pdu pdu, Receive());
  if (pdu.type != tcp::PduType::kIcResp) {
    return absl::InternalError(absl::StrCat("expected ICResp, got ", tcp::ToString(pdu.type)));
  }
  const auto resp = pdu.as<tcp::IcRespPdu>();
  SetDigests(resp.dgst & tcp::kDgstHeader, resp.dgst & tcp::kDgstData);
  State& st = *state_;
  tcp::PduParserOptions o = st.parser.options();
  o.data_alignment = tcp::PdaBytes(hpda);
  st.parser.Reconfigure(o);
  return resp;
}

absl::Status RawConnection::SendCapsule(const nvme::Sqe& sqe, std::span<const uint8_t> in_capsule,
                                        uint32_t transport_len, uint8_t cpda) {
  nvme::Sqe cmd = sqe;
  cmd.flags = (cmd.flags & 0x3F) | nvme::kSqeFlagsPsdtSgl;
  std::memset(&cmd.dptr, 0, sizeof(cmd.dptr));
  if (!in_capsule.empty()) {
    cmd.dptr.length.set(static_cast<uint32_t>(in_capsule.size()));
    cmd.dptr.sgl_id = nvme::kSglIdInCapsule;
  } else if (transport_len > 0) {
    cmd.dptr.length.set(transport_len);
    cmd.dptr.sgl_id = nvme::kSglIdTransport;
  }
  const tcp::WireFormat wf{hdgst_, ddgst_, tcp::PdaBytes(cpda)};
  uint8_t hdr[tcp::kMaxHeaderBytes];
  const uint32_t n = tcp::EncodeCapsuleCmd(hdr, cmd, static_cast<uint32_t>(in_capsule.size()), wf);
  std::vector<uint8_t> bytes;
  tcp::AppendPdu(&bytes, hdr, n, in_capsule, wf);
  return Send(bytes);
}

absl::StatusOr<nvme::Cqe> RawConnection::ConnectQueue(const std::string& subnqn, uint16_t qid,
                                                      uint16_t cntlid, uint8_t cattr,
                                                      const std::string& hostnqn) {
  nvme::Sqe sqe = nvme::BuildConnect(qid, 32, 0, cattr);
  sqe.cid.set(0x77);
  uint8_t hostid[16];
  for (int i = 0; i < 16; ++i) hostid[i] = static_cast<uint8_t>(0xA0 + i);
  ASSIGN_OR_RETURN(nvme::ConnectData data,
                   nvme::BuildConnectData(hostid, cntlid, subnqn, kHostNqn));
  // The host NQN as given, raw (a raw connection may send what a host library would refuse).
  std::memset(data.hostnqn, 0, sizeof(data.hostnqn));
  std::memcpy(data.hostnqn, hostnqn.data(), std::min(hostnqn.size(), sizeof(data.hostnqn)));
  RETURN_IF_ERROR(SendCapsule(sqe, {reinterpret_cast<const uint8_t*>(&data), sizeof(data)}));
  ASSIGN_OR_RETURN(Pdu pdu, Receive());
  if (pdu.type != tcp::PduType::kCapsuleResp) {
    return absl::InternalError(absl::StrCat("expected CapsuleResp, got ", tcp::ToString(pdu.type)));
  }
  return pdu.as<tcp::CapsuleRespPdu>().cqe;
}

}  // namespace nvmf_ublk::target::testing
