// TcpConnection against small scripted peers on loopback: failure paths and the error funnel.
// (The full data path is tested against tools/nvmf-target in the integration suite.)
#include "io/tcp_connection.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "base/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "io/ktls.h"
#include "tcp/pdu_codec.h"

namespace nvmf_ublk::io {
namespace {

using ::nvmf_ublk::testing::IsOk;
using ::nvmf_ublk::testing::StatusIs;
using ::testing::HasSubstr;

class Observer : public ConnectionObserver {
 public:
  void OnConnectionLive(TcpConnection*) override { ++live; }
  void OnCommandDone(TcpConnection*, uint64_t, const nvme::Cqe&, int) override { ++done; }
  void OnConnectionClosed(TcpConnection*, const absl::Status& why) override {
    ++closed;
    reason = why;
  }
  int live = 0, done = 0, closed = 0;
  absl::Status reason;
};

// A listening socket on 127.0.0.1 with an ephemeral port.
struct Listener {
  UniqueFd fd;
  uint16_t port = 0;
  Listener() {
    fd.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    EXPECT_EQ(::listen(fd.get(), 4), 0);
    socklen_t len = sizeof(a);
    getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
};

ConnectionOptions Opts(uint16_t port, int64_t timeout_ns = 2'000'000'000) {
  ConnectionOptions o;
  o.target = *ResolveAddress("127.0.0.1", std::to_string(port));
  o.connect_timeout_ns = timeout_ns;
  o.queue.subnqn = "nqn.2026-01.io.test:sub";
  o.queue.hostnqn = "nqn.2026-01.io.test:host";
  o.queue.name = "test-q0";
  return o;
}

// The peer side: accepts one connection and reads the host's ICReq (128 bytes) into `icreq`;
// returns the connection's fd and how much was read in `*got`.
int AcceptAndReadIcReq(Listener& l, uint8_t (&icreq)[128], size_t* got) {
  const int fd = ::accept(l.fd.get(), nullptr, nullptr);
  *got = 0;
  while (fd >= 0 && *got < sizeof(icreq)) {
    const ssize_t n = ::recv(fd, icreq + *got, sizeof(icreq) - *got, 0);
    if (n <= 0) break;
    *got += static_cast<size_t>(n);
  }
  return fd;
}

void RunUntilClosed(Reactor& r, Observer& obs, int64_t limit_ns = 5'000'000'000) {
  const int64_t start = MonotonicNanos();
  while (obs.closed == 0 && MonotonicNanos() - start < limit_ns) r.RunOnce(50'000'000);
}

TEST(TcpConnection, RefusedPortIsAClearUnavailableError) {
  uint16_t port;
  {
    Listener l;  // bound then closed: nothing listens on this port now
    port = l.port;
  }
  Reactor r({64, "t"});
  ASSERT_THAT(r.Init(), IsOk());
  Observer obs;
  TcpConnection c(&r, Opts(port), &obs);
  c.Start();
  RunUntilClosed(r, obs);
  EXPECT_EQ(obs.closed, 1);
  EXPECT_EQ(obs.live, 0);
  EXPECT_THAT(obs.reason, StatusIs(absl::StatusCode::kUnavailable,
                                   HasSubstr("connect to 127.0.0.1:" + std::to_string(port) +
                                             ": Connection refused")));
  EXPECT_EQ(c.state(), TcpConnection::State::kClosed);
}

TEST(TcpConnection, SilentTargetTimesOutDuringHandshake) {
  Listener l;  // accepts at the TCP level (backlog) but never answers the ICReq
  Reactor r({64, "t"});
  ASSERT_THAT(r.Init(), IsOk());
  Observer obs;
  TcpConnection c(&r, Opts(l.port, 300'000'000), &obs);
  const int64_t start = MonotonicNanos();
  c.Start();
  RunUntilClosed(r, obs);
  EXPECT_EQ(obs.closed, 1);
  EXPECT_THAT(obs.reason, StatusIs(absl::StatusCode::kDeadlineExceeded,
                                   HasSubstr("NVMe/TCP handshake to 127.0.0.1")));
  EXPECT_LT(MonotonicNanos() - start, 2'000'000'000);
}

// A target that drips its ICResp (one byte every 20 ms, then its Connect answer never) costs the
// connect timeout and no more: the timeout is a deadline for the whole handshake, which bytes
// arriving do not extend; the peer sees the connection closed.
TEST(TcpConnection, DrippingTargetCostsTheConnectTimeoutOnly) {
  Listener l;
  std::atomic<bool> closed_seen{false};
  std::thread peer([&] {
    uint8_t req[128];
    size_t got = 0;
    const int fd = AcceptAndReadIcReq(l, req, &got);
    uint8_t resp[128];
    const uint32_t len = tcp::EncodeIcResp(resp, 0, 0, 65536);
    for (uint32_t i = 0; i < len; ++i) {
      if (::send(fd, resp + i, 1, MSG_NOSIGNAL) != 1) break;
      usleep(20'000);
    }
    // Whatever is left: the host's close (recv returns 0 or an error) must come.
    uint8_t b;
    while (::recv(fd, &b, 1, 0) > 0) {
    }
    closed_seen = true;
    ::close(fd);
  });
  Reactor r({64, "t"});
  ASSERT_THAT(r.Init(), IsOk());
  Observer obs;
  TcpConnection c(&r, Opts(l.port, 300'000'000), &obs);
  const int64_t start = MonotonicNanos();
  c.Start();
  RunUntilClosed(r, obs);
  const int64_t took = MonotonicNanos() - start;
  EXPECT_EQ(obs.closed, 1);
  EXPECT_THAT(obs.reason, StatusIs(absl::StatusCode::kDeadlineExceeded,
                                   HasSubstr("NVMe/TCP handshake to 127.0.0.1")));
  EXPECT_GE(took, 300'000'000);
  EXPECT_LT(took, 1'500'000'000);  // the drip alone would take 128 x 20 ms = 2.56 s
  peer.join();
  EXPECT_TRUE(closed_seen);
}

TEST(TcpConnection, TargetClosingDuringIcReq) {
  Listener l;
  std::thread peer([&] {
    uint8_t buf[128];
    size_t got = 0;
    const int fd = AcceptAndReadIcReq(l, buf, &got);
    EXPECT_EQ(got, 128u);
    EXPECT_EQ(buf[0], 0x00);  // ICReq
    ::close(fd);
  });
  Reactor r({64, "t"});
  ASSERT_THAT(r.Init(), IsOk());
  Observer obs;
  TcpConnection c(&r, Opts(l.port), &obs);
  c.Start();
  RunUntilClosed(r, obs);
  peer.join();
  EXPECT_EQ(obs.closed, 1);
  EXPECT_THAT(obs.reason, StatusIs(absl::StatusCode::kUnavailable,
                                   HasSubstr("connection closed by 127.0.0.1")));
}

TEST(TcpConnection, MalformedIcRespGetsTermReqAndDataLoss) {
  Listener l;
  std::vector<uint8_t> termreq;
  std::thread peer([&] {
    uint8_t icreq[128];
    size_t got = 0;
    const int fd = AcceptAndReadIcReq(l, icreq, &got);
    uint8_t buf[256];
    uint8_t resp[tcp::kMaxHeaderBytes];
    tcp::EncodeIcResp(resp, 0, 0, 1000);  // MAXH2CDATA below 4096
    EXPECT_EQ(::send(fd, resp, 128, 0), 128);
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0) termreq.insert(termreq.end(), buf, buf + n);
    ::close(fd);
  });
  Reactor r({64, "t"});
  ASSERT_THAT(r.Init(), IsOk());
  Observer obs;
  TcpConnection c(&r, Opts(l.port), &obs);
  c.Start();
  RunUntilClosed(r, obs);
  peer.join();
  EXPECT_THAT(obs.reason, StatusIs(absl::StatusCode::kDataLoss, HasSubstr("MAXH2CDATA 1000")));
  ASSERT_GE(termreq.size(), 24u);
  EXPECT_EQ(termreq[0], 0x02);                    // H2CTermReq
  EXPECT_EQ(LoadLe16(termreq.data() + 8), 0x06);  // FES Unsupported Parameter
  EXPECT_EQ(LoadLe32(termreq.data() + 10), 12u);  // FEI: MAXH2CDATA offset
}

TEST(TcpConnection, SubmitBeforeLiveIsRefused) {
  Reactor r({64, "t"});
  ASSERT_THAT(r.Init(), IsOk());
  Observer obs;
  TcpConnection c(&r, Opts(1), &obs);
  EXPECT_EQ(c.Submit(nvme::BuildKeepAlive(), nullptr, 0, 1), -ENOTCONN);
  EXPECT_FALSE(c.CanSubmit());
}

TEST(Address, ResolveAndFormat) {
  ASSERT_OK_AND_ASSIGN(SocketAddress a, ResolveAddress("127.0.0.1", "4420"));
  EXPECT_EQ(a.ToString(), "127.0.0.1:4420");
  EXPECT_EQ(a.port(), 4420);
  ASSERT_OK_AND_ASSIGN(SocketAddress b, ResolveAddress("::1", "8009"));
  EXPECT_EQ(b.ToString(), "[::1]:8009");
  EXPECT_THAT(ResolveAddress("127.0.0.1", "70000"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ResolveAddress("127.0.0.1", "x"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ResolveAddress("", "4420"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ResolveAddress("no-such-host.invalid", "4420"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no-such-host.invalid")));
}

// A TLS peer: runs the server side of the PSK handshake over the accepted socket (blocking), then
// reads whatever follows. Returns the handshake's result; `after` gets the bytes after it.
absl::Status ServeTls(Listener& l, const std::string& id, const auth::Bytes& psk,
                      std::vector<uint8_t>* after) {
  UniqueFd fd(::accept(l.fd.get(), nullptr, nullptr));
  auto hs =
      auth::TlsHandshake::Server([&](std::string_view got) -> std::optional<auth::TlsServerPsk> {
        if (got != id) return std::nullopt;
        return auth::TlsServerPsk{psk, auth::HashId::kSha256};
      });
  if (!hs.ok()) return hs.status();
  uint8_t buf[4096];
  while (!(*hs)->done()) {
    const ssize_t n = ::recv(fd.get(), buf, sizeof(buf), 0);
    if (n <= 0) return absl::UnavailableError("peer closed during the handshake");
    absl::Status st = (*hs)->Feed(std::span<const uint8_t>(buf, static_cast<size_t>(n)));
    auth::Bytes out = (*hs)->TakeOutput();
    if (!out.empty()) ::send(fd.get(), out.data(), out.size(), MSG_NOSIGNAL);
    if (!st.ok()) return st;
  }
  for (;;) {
    const ssize_t n = ::recv(fd.get(), buf, sizeof(buf), 0);
    if (n <= 0) break;
    after->insert(after->end(), buf, buf + n);
  }
  return absl::OkStatus();
}

// TLS before the ICReq: the handshake runs over the connection's own sends and receives; then
// the keys go to kernel TLS. This host's kernel may have none: then the connection closes with a
// reason naming the tls module; where it has it, what follows on the wire is a TLS record (the
// ICReq sealed by the kernel), never the plaintext ICReq.
TEST(TcpConnection, TlsHandshakeThenKernelTlsOrAClearReason) {
  Listener l;
  const std::string id = "NVMe0R01 nqn.2026-01.io.test:host nqn.2026-01.io.test:sub";
  const auth::Bytes psk = auth::RandomBytes(32);
  std::vector<uint8_t> after;
  absl::Status served;
  std::thread peer([&] { served = ServeTls(l, id, psk, &after); });
  Reactor r({64, "t"});
  ASSERT_THAT(r.Init(), IsOk());
  Observer obs;
  ConnectionOptions o = Opts(l.port, 1'000'000'000);
  auto t = std::make_shared<TlsOptions>();
  t->identity = id;
  t->psk = psk;
  o.tls = t;
  TcpConnection c(&r, o, &obs);
  c.Start();
  RunUntilClosed(r, obs, 3'000'000'000);  // with kernel TLS: the ICResp never comes (timeout)
  if (c.state() != TcpConnection::State::kClosed) c.Close(absl::CancelledError("test over"));
  RunUntilClosed(r, obs);
  peer.join();
  EXPECT_THAT(served, IsOk());
  if (!KernelTlsAvailable()) {
    EXPECT_THAT(obs.reason,
                StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("modprobe tls")));
    EXPECT_TRUE(after.empty());
  } else {
    ASSERT_GE(after.size(), 5u + 128u + 16u);
    EXPECT_EQ(after[0], 23);  // an application-data record, not the ICReq's PDU type 0
  }
}

TEST(TcpConnection, TlsWithTheWrongPskFailsTheHandshake) {
  Listener l;
  const std::string id = "NVMe0R01 nqn.2026-01.io.test:host nqn.2026-01.io.test:sub";
  std::vector<uint8_t> after;
  absl::Status served;
  std::thread peer([&] { served = ServeTls(l, id, auth::RandomBytes(32), &after); });
  Reactor r({64, "t"});
  ASSERT_THAT(r.Init(), IsOk());
  Observer obs;
  ConnectionOptions o = Opts(l.port);
  auto t = std::make_shared<TlsOptions>();
  t->identity = id;
  t->psk = auth::RandomBytes(32);
  o.tls = t;
  TcpConnection c(&r, o, &obs);
  c.Start();
  RunUntilClosed(r, obs);
  peer.join();
  EXPECT_FALSE(served.ok());
  EXPECT_EQ(obs.live, 0);
  EXPECT_THAT(obs.reason, StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("TLS")));
}

}  // namespace
}  // namespace nvmf_ublk::io
