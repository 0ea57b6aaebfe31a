#include "tests/integration/engine_harness.h"

#include <dirent.h>

#include <chrono>
#include <cstring>
#include <future>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/clock.h"

namespace nvmf_ublk::io::testing {
namespace {

constexpr uint8_t kPoison = 0xA5;

size_t CountDirEntries(const char* path) {
  size_t n = 0;
  DIR* d = opendir(path);
  if (d == nullptr) return 0;
  while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

std::string Describe(const IoResult& r) {
  if (r.err != 0) return absl::StrCat("err ", r.err);
  return absl::StrFormat("status 0x%03x", r.status);
}

}  // namespace

target::TargetConfig OneNamespaceTarget(uint64_t ns_bytes, uint32_t block_size) {
  target::TargetConfig c;
  c.ports.push_back(target::PortConfig{});
  target::SubsystemConfig s;
  s.nqn = kSubNqn;
  target::NamespaceConfig ns;
  ns.size_bytes = ns_bytes;
  ns.block_size = block_size;
  s.namespaces = {ns};
  c.subsystems.push_back(s);
  return c;
}

ControllerOptions HostOptions(uint16_t port, const std::string& subnqn) {
  ControllerOptions o;
  o.traddr = "127.0.0.1";
  o.trsvcid = std::to_string(port);
  o.subnqn = subnqn;
  o.hostnqn = kHostNqn;
  for (int i = 0; i < 16; ++i) o.hostid[i] = static_cast<uint8_t>(0xC0 + i);
  o.reconnect_delay_s = 1;
  o.ctrl_loss_tmo_s = 30;
  o.connect_timeout_ns = 2 * kSec;
  o.admin_timeout_ns = 10 * kSec;
  o.io_timeout_ns = 10 * kSec;
  o.abort_timeout_ns = 5 * kSec;
  return o;
}

std::vector<uint8_t> Pattern(size_t bytes, uint64_t seed) {
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ull + 1);
  std::vector<uint8_t> out(bytes);
  for (size_t i = 0; i < bytes; i += 8) {
    const uint64_t v = rng();
    std::memcpy(out.data() + i, &v, std::min<size_t>(8, bytes - i));
  }
  return out;
}

size_t OpenFdCount() { return CountDirEntries("/proc/self/fd"); }
size_t ThreadCount() { return CountDirEntries("/proc/self/task"); }

std::vector<uint8_t> TargetBytes(const target::Target& target, uint64_t offset, size_t len,
                                 const std::string& nqn, uint32_t nsid) {
  std::vector<uint8_t> out(len);
  const absl::Status s = target.ReadNamespace(nqn, nsid, offset, out);
  EXPECT_TRUE(s.ok()) << s;
  return out;
}

bool WaitUntil(const std::function<bool()>& pred, int64_t timeout_ns) {
  const int64_t deadline = MonotonicNanos() + timeout_ns;
  while (!pred()) {
    if (MonotonicNanos() > deadline) return pred();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

// --- Completions ---------------------------------------------------------------------------------

void Completions::OnIoDone(IoRequest* req, const IoResult& result) {
  const size_t k = req->user;
  const int64_t now = MonotonicNanos();
  std::lock_guard<std::mutex> lock(mu_);
  results_[k] = result;
  at_ns_[k] = now;
  if (calls_[k].fetch_add(1) == 0) ++done_;
  cv_.notify_all();
}

bool Completions::WaitAll(int64_t timeout_ns) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, std::chrono::nanoseconds(timeout_ns),
                      [&] { return done_ == calls_.size(); });
}

IoResult Completions::result(size_t k) const {
  std::lock_guard<std::mutex> lock(mu_);
  return results_[k];
}

int64_t Completions::completed_at_ns(size_t k) const {
  std::lock_guard<std::mutex> lock(mu_);
  return at_ns_[k];
}

// --- TestController ------------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<TestController>> TestController::Connect(Engine* engine,
                                                                        ControllerOptions options) {
  std::unique_ptr<TestController> t(new TestController(engine));
  if (absl::Status s = t->StartAndWait(std::move(options)); !s.ok()) return s;
  return t;
}

IoResult TestController::Io(size_t queue, IoRequest* req) {
  struct Once : IoCallback {
    std::promise<IoResult> p;
    std::atomic<int> calls{0};
    void OnIoDone(IoRequest*, const IoResult& r) override {
      if (calls.fetch_add(1) == 0) {
        p.set_value(r);
      } else {
        ADD_FAILURE() << "request completed more than once";
      }
    }
  } waiter;
  auto fut = waiter.p.get_future();
  req->callback = &waiter;
  Submit(queue, req);
  const IoResult r = fut.get();
  // Give a (wrong) second completion a chance to show up before `waiter` goes away: one more turn
  // of the queue's reactor.
  IoQueue* q = controller()->io_queue(queue);
  if (q != nullptr) Engine::RunOn(q->reactor(), [] { return 0; });
  return r;
}

// --- IoLoad --------------------------------------------------------------------------------------

IoLoad::IoLoad(TestController* ctrl, Options options) : ctrl_(ctrl), options_(options) {
  const uint32_t queues = ctrl_->controller()->io_queue_count();
  for (uint32_t q = 0; q < queues; ++q) {
    for (uint32_t i = 0; i < options_.slots_per_queue; ++i) {
      const size_t k = slots_.size();
      auto s = std::make_unique<Slot>();
      s->queue = q;
      s->lba = options_.first_lba + k * options_.large_blocks;
      s->blocks = k % 2 == 0 ? options_.small_blocks : options_.large_blocks;
      s->rbuf.assign(size_t{s->blocks} * options_.block_size, kPoison);
      s->req.user = k;
      s->req.callback = this;
      slots_.push_back(std::move(s));
    }
  }
}

IoLoad::~IoLoad() {
  Stop();
  if (!WaitIdle(60 * kSec)) {
    ADD_FAILURE() << "I/O load did not go idle: leaking its requests";
    for (auto& s : slots_) (void)s.release();  // deliberately leaked: the engine may still use them
  }
}

void IoLoad::Start() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    active_ = slots_.size();
  }
  // All slots of a queue are submitted in one reactor turn: more than the queue depth waits.
  const uint32_t queues = ctrl_->controller()->io_queue_count();
  for (uint32_t q = 0; q < queues; ++q) {
    IoQueue* queue = ctrl_->controller()->io_queue(q);
    queue->reactor()->Post([this, q] {
      for (auto& s : slots_) {
        if (s->queue == q) StartWrite(*s);
      }
    });
  }
}

void IoLoad::Stop() { stop_ = true; }

bool IoLoad::WaitIdle(int64_t timeout_ns) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, std::chrono::nanoseconds(timeout_ns), [&] { return active_ == 0; });
}

bool IoLoad::WaitVerified(uint64_t n, int64_t timeout_ns) {
  return WaitUntil([&] { return verified_.load() >= n; }, timeout_ns);
}

int64_t IoLoad::unaccounted() const {
  int64_t n = 0;
  for (const auto& s : slots_) {
    n += static_cast<int64_t>(s->submitted.load()) - static_cast<int64_t>(s->completed.load());
  }
  return n;
}

std::map<std::string, uint64_t> IoLoad::results() const {
  std::lock_guard<std::mutex> lock(mu_);
  return results_;
}

::testing::AssertionResult IoLoad::TargetHoldsLastWrites(const target::Target& target) const {
  for (size_t k = 0; k < slots_.size(); ++k) {
    const Slot& s = *slots_[k];
    if (s.generation == 0) continue;
    const std::vector<uint8_t> held =
        TargetBytes(target, s.lba * options_.block_size, s.wbuf.size(), kSubNqn, options_.nsid);
    if (held != s.wbuf) {
      return ::testing::AssertionFailure() << "slot " << k << " (LBA " << s.lba << ", generation "
                                           << s.generation << "): the target holds other data";
    }
  }
  return ::testing::AssertionSuccess();
}

void IoLoad::StartWrite(Slot& s) {
  ++s.generation;
  s.writing = true;
  s.retries = 0;
  s.wbuf = Pattern(size_t{s.blocks} * options_.block_size, (s.req.user << 32) | s.generation);
  s.req.Write(options_.nsid, s.lba, s.blocks, s.wbuf.data(), static_cast<uint32_t>(s.wbuf.size()),
              false);
  SubmitHere(s);
}

void IoLoad::StartRead(Slot& s) {
  s.writing = false;
  s.retries = 0;
  std::memset(s.rbuf.data(), kPoison, s.rbuf.size());
  s.req.Read(options_.nsid, s.lba, s.blocks, s.rbuf.data(), static_cast<uint32_t>(s.rbuf.size()));
  SubmitHere(s);
}

void IoLoad::SubmitHere(Slot& s) {
  s.in_flight = true;
  ++s.submitted;
  ctrl_->controller()->io_queue(s.queue)->Submit(&s.req);
}

void IoLoad::Record(const std::string& what) {
  std::lock_guard<std::mutex> lock(mu_);
  ++results_[what];
}

void IoLoad::Idle(const std::string& why) {
  if (!why.empty()) Record(why);
  std::lock_guard<std::mutex> lock(mu_);
  --active_;
  cv_.notify_all();
}

void IoLoad::OnIoDone(IoRequest* req, const IoResult& r) {
  Slot& s = *slots_[req->user];
  if (!s.in_flight.exchange(false)) {
    ++double_completions_;
    Record("completed twice");
    return;
  }
  ++s.completed;
  const nvme::RetryClass cls = r.retry_class();
  if (cls == nvme::RetryClass::kSuccess) {
    if (s.writing) {
      StartRead(s);
      return;
    }
    if (s.rbuf != s.wbuf) {
      ++verify_failures_;
      Record("read returned wrong data with success");
    } else {
      ++verified_;
    }
    if (stop_) {
      Idle();
      return;
    }
    StartWrite(s);
    return;
  }
  Record(Describe(r));
  // -ENOTCONN/-ENODEV complete synchronously inside Submit: re-issuing them here would only spin.
  if (cls == nvme::RetryClass::kFail || r.err == -ENOTCONN || r.err == -ENODEV ||
      ++s.retries > options_.max_retries) {
    ++failed_;
    Idle();
    return;
  }
  ++reissued_;
  if (!s.writing) std::memset(s.rbuf.data(), kPoison, s.rbuf.size());
  SubmitHere(s);
}

}  // namespace nvmf_ublk::io::testing
