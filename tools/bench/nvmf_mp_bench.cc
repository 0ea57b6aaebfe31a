// nvmf-mp-bench: block I/O through a multipath namespace head (the code behind /dev/ublkbN) over
// one or more paths to one subsystem, without the kernel's ublk driver:
//
//   nvmf-mp-bench -a 127.0.0.1 -s 4420,4421 -n NQN -Q 32 -o 4096 -w randread -t 10
//
// One worker per queue (= reactor) keeps `qd` block requests in the head; the head spreads them
// over the paths by its policy, fails over and requeues as a device does. Prints IOPS, latency,
// the longest time the device completed nothing (the completion gap: what a path cut costs),
// errors, and the commands each path carried; --json for scripts (tools/bench/multipath.sh).
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_split.h"
#include "base/clock.h"
#include "base/log.h"
#include "io/engine.h"
#include "multipath/namespace_head.h"
#include "multipath/path.h"
#include "nlohmann/json.hpp"
#include "tools/bench/cpu_time.h"
#include "tools/bench/latency_histogram.h"

namespace nvmf_ublk::bench {
namespace {

struct Config {
  std::string traddr = "127.0.0.1";
  std::string trsvcids = "4420";
  std::string nqn;
  std::string hostnqn = "nqn.2014-08.org.nvmexpress:uuid:6e766d66-7562-6c6b-2d6d-700000000000";
  uint32_t qd = 32;
  uint32_t io_size = 4096;
  std::string pattern = "randread";
  std::string policy = "round-robin";
  double seconds = 10;
  double warmup = 1;
  uint32_t queues = 1;
  int kato_s = 5;
  bool ghost_write_hold = true;
  bool json = false;
};

class Worker final : public ublk::BlockIoSink {
 public:
  Worker(const Config& cfg, multipath::NamespaceHead* head, uint16_t queue, uint64_t slots)
      : cfg_(cfg), head_(head), rng_(4321 + queue), slots_(slots) {
    ios_.resize(cfg.qd);
    start_ns_.resize(cfg.qd);
    for (uint32_t i = 0; i < cfg.qd; ++i) {
      bufs_.emplace_back(static_cast<uint8_t*>(std::aligned_alloc(4096, cfg.io_size)));
      std::memset(bufs_.back().get(), static_cast<int>(0x5A ^ i), cfg.io_size);
      ios_[i].queue = queue;
      ios_[i].tag = static_cast<uint16_t>(i);
      ios_[i].set_sink(this);
    }
  }
  // Reactor thread of the queue.
  void Start(int64_t warmup_end, int64_t end, std::promise<void>* done) {
    warmup_end_ = warmup_end;
    end_ = end;
    done_ = done;
    last_ns_ = MonotonicNanos();
    for (auto& io : ios_) Issue(&io);
  }
  LatencyHistogram hist;
  uint64_t ios = 0, errors = 0;
  int64_t max_gap_ns = 0;
  int64_t max_gap_at_ns = 0;

 private:
  void Issue(ublk::BlockIo* io) {
    io->op = cfg_.pattern == "randwrite" ? ublk::BlockIo::kWrite : ublk::BlockIo::kRead;
    io->offset_bytes = (rng_() % slots_) * cfg_.io_size;
    io->len_bytes = cfg_.io_size;
    io->buffer = bufs_[io->tag].get();
    start_ns_[io->tag] = MonotonicNanos();
    ++inflight_;
    head_->Submit(io);
  }
  void OnBlockIoComplete(ublk::BlockIo* io, int result) override {
    const int64_t now = MonotonicNanos();
    --inflight_;
    if (now >= warmup_end_) {
      const int64_t gap = now - std::max(last_ns_, warmup_end_);
      if (gap > max_gap_ns) {
        max_gap_ns = gap;
        max_gap_at_ns = now;
      }
      if (result == static_cast<int>(cfg_.io_size)) {
        hist.Record(now - start_ns_[io->tag]);
        ++ios;
      } else {
        ++errors;
      }
    }
    last_ns_ = now;
    if (now < end_) {
      Issue(io);
    } else if (inflight_ == 0) {
      done_->set_value();
    }
  }

  struct FreeDeleter {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  const Config& cfg_;
  multipath::NamespaceHead* head_;
  std::mt19937_64 rng_;
  uint64_t slots_;
  std::vector<ublk::BlockIo> ios_;
  std::vector<std::unique_ptr<uint8_t, FreeDeleter>> bufs_;
  std::vector<int64_t> start_ns_;
  uint32_t inflight_ = 0;
  int64_t warmup_end_ = 0, end_ = 0, last_ns_ = 0;
  std::promise<void>* done_ = nullptr;
};

int Run(const Config& cfg) {
  auto policy = multipath::ParseIoPolicy(cfg.policy);
  if (!policy.ok()) {
    fprintf(stderr, "nvmf-mp-bench: %s\n", policy.status().ToString().c_str());
    return 1;
  }
  auto engine = io::Engine::Create(static_cast<int>(cfg.queues));
  if (!engine.ok()) {
    fprintf(stderr, "nvmf-mp-bench: %s\n", engine.status().ToString().c_str());
    return 1;
  }
  std::vector<std::unique_ptr<io::SyncController>> ctrls;
  std::vector<std::unique_ptr<multipath::ControllerPath>> paths;
  const io::NamespaceEntry* ns = nullptr;
  for (const std::string& svc : std::vector<std::string>(absl::StrSplit(cfg.trsvcids, ','))) {
    io::ControllerOptions o;
    o.traddr = cfg.traddr;
    o.trsvcid = svc;
    o.subnqn = cfg.nqn;
    o.hostnqn = cfg.hostnqn;
    o.nr_io_queues = cfg.queues;
    o.queue_size = std::max<uint32_t>(cfg.qd + 1, 32);
    o.kato_s = cfg.kato_s;
    o.reconnect_delay_s = 1;
    o.ctrl_loss_tmo_s = -1;
    o.ghost_write_hold = cfg.ghost_write_hold;
    o.hostid = {0x6e, 0x76, 0x6d, 0x66, 0x75, 0x62, 0x6c, 0x6b, 0x2d, 0x6d, 0x70};
    auto ctrl = io::SyncController::Connect(engine->get(), o);
    if (!ctrl.ok()) {
      fprintf(stderr, "nvmf-mp-bench: connect %s:%s %s: %s\n", cfg.traddr.c_str(), svc.c_str(),
              cfg.nqn.c_str(), ctrl.status().ToString().c_str());
      return 1;
    }
    io::Controller* c = (*ctrl)->controller();
    if (c->namespaces().empty()) {
      fprintf(stderr, "nvmf-mp-bench: %s has no namespace\n", cfg.nqn.c_str());
      return 1;
    }
    if (ns == nullptr) ns = &c->namespaces().front();
    paths.push_back(std::make_unique<multipath::ControllerPath>(c, ns->nsid, cfg.queues));
    ctrls.push_back(std::move(*ctrl));
  }
  if (cfg.io_size % ns->info.lba_bytes != 0) {
    fprintf(stderr, "nvmf-mp-bench: I/O size %u is not a multiple of the %u-byte block\n",
            cfg.io_size, ns->info.lba_bytes);
    return 1;
  }
  std::vector<multipath::Path*> raw;
  for (auto& p : paths) raw.push_back(p.get());
  auto head = std::make_unique<multipath::NamespaceHead>("bench", raw, ns->info.lba_bytes,
                                                         cfg.queues, cfg.qd, *policy);
  const uint64_t slots = ns->info.nsze * ns->info.lba_bytes / cfg.io_size;
  std::vector<std::unique_ptr<Worker>> workers;
  std::vector<std::promise<void>> done(cfg.queues);
  for (uint16_t q = 0; q < cfg.queues; ++q) {
    workers.push_back(std::make_unique<Worker>(cfg, head.get(), q, slots));
  }
  const int64_t t0 = MonotonicNanos();
  const int64_t warmup_end = t0 + static_cast<int64_t>(cfg.warmup * 1e9);
  const int64_t end = warmup_end + static_cast<int64_t>(cfg.seconds * 1e9);
  for (uint16_t q = 0; q < cfg.queues; ++q) {
    Worker* w = workers[q].get();
    std::promise<void>* d = &done[q];
    (*engine)->io_reactors()[q]->Post([w, warmup_end, end, d] { w->Start(warmup_end, end, d); });
  }
  while (MonotonicNanos() < warmup_end) usleep(1000);
  const double cpu_warm = CpuSeconds();
  for (auto& d : done) d.get_future().wait();
  const int64_t t1 = MonotonicNanos();
  const double cpu = CpuSeconds() - cpu_warm;
  const double secs = static_cast<double>(t1 - warmup_end) / 1e9;
  LatencyHistogram hist;
  uint64_t ios = 0, errors = 0;
  int64_t gap = 0, gap_at = 0;
  for (auto& w : workers) {
    hist.Merge(w->hist);
    ios += w->ios;
    errors += w->errors;
    if (w->max_gap_ns > gap) {
      gap = w->max_gap_ns;
      gap_at = w->max_gap_at_ns;
    }
  }
  const multipath::HeadStats hs = head->stats();
  nlohmann::json per_path = nlohmann::json::array();
  for (auto& p : paths) per_path.push_back(p->totals().ios);
  head.reset();
  for (auto& c : ctrls) c->Disconnect();
  const double iops = static_cast<double>(ios) / secs;
  auto us = [](uint64_t v) { return static_cast<double>(v) / 1000.0; };
  if (cfg.json) {
    nlohmann::json j = {{"pattern", cfg.pattern},
                        {"io_size", cfg.io_size},
                        {"qd", cfg.qd},
                        {"queues", cfg.queues},
                        {"paths", paths.size()},
                        {"policy", cfg.policy},
                        {"seconds", secs},
                        {"ios", ios},
                        {"errors", errors},
                        {"iops", iops},
                        {"lat_mean_us", hist.MeanNs() / 1000.0},
                        {"lat_p99_us", us(hist.PercentileNs(99))},
                        {"lat_max_us", us(hist.MaxNs())},
                        {"max_gap_ms", static_cast<double>(gap) / 1e6},
                        {"max_gap_at_s", static_cast<double>(gap_at - warmup_end) / 1e9},
                        {"failovers", hs.failovers},
                        {"held", hs.held},
                        {"cpu_s", cpu},
                        {"path_ios", per_path}};
    printf("%s\n", j.dump().c_str());
  } else {
    printf("%s %u B qd %u x %u queue(s) over %zu path(s), %s, %.1f s\n", cfg.pattern.c_str(),
           cfg.io_size, cfg.qd, cfg.queues, paths.size(), cfg.policy.c_str(), secs);
    printf("  IOPS %.0f   errors %llu   failovers %llu   held %llu\n", iops,
           static_cast<unsigned long long>(errors), static_cast<unsigned long long>(hs.failovers),
           static_cast<unsigned long long>(hs.held));
    printf("  latency us: mean %.1f  p99 %.1f  max %.1f;  longest completion gap %.1f ms\n",
           hist.MeanNs() / 1000.0, us(hist.PercentileNs(99)), us(hist.MaxNs()),
           static_cast<double>(gap) / 1e6);
    printf("  commands per path: %s\n", per_path.dump().c_str());
  }
  return errors ? 2 : 0;
}

}  // namespace
}  // namespace nvmf_ublk::bench

int main(int argc, char** argv) {
  using nvmf_ublk::bench::Config;
  Config cfg;
  CLI::App app{"nvmf-mp-bench: block I/O through a multipath namespace head"};
  app.add_option("-a,--traddr", cfg.traddr, "target address")->capture_default_str();
  app.add_option("-s,--trsvcid", cfg.trsvcids, "target ports, comma-separated: one path each")
      ->capture_default_str();
  app.add_option("-n,--nqn", cfg.nqn, "subsystem NQN")->required();
  app.add_option("-Q,--qd", cfg.qd, "requests in flight per queue")->capture_default_str();
  app.add_option("-o,--io-size", cfg.io_size, "bytes per request")->capture_default_str();
  app.add_option("-w,--pattern", cfg.pattern, "randread or randwrite")
      ->check(CLI::IsMember({"randread", "randwrite"}))
      ->capture_default_str();
  app.add_option("-p,--iopolicy", cfg.policy, "round-robin, queue-depth, failover, latency")
      ->capture_default_str();
  app.add_option("-t,--time", cfg.seconds, "seconds measured")->capture_default_str();
  app.add_option("--warmup", cfg.warmup, "seconds before measuring")->capture_default_str();
  app.add_option("-q,--queues", cfg.queues, "queues (reactors)")->capture_default_str();
  app.add_option("-k,--keep-alive-tmo", cfg.kato_s, "KATO (s): with CQT, the ghost-write hold")
      ->capture_default_str();
  bool no_hold = false;
  app.add_flag("--no-ghost-write-hold", no_hold, "re-issue cut-off writes at once");
  app.add_flag("--json", cfg.json, "one JSON line");
  std::string level = "warning";
  app.add_option("--log-level", level, "debug, info, warning, error")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  cfg.ghost_write_hold = !no_hold;
  nvmf_ublk::SetMinLogLevel(level == "debug"   ? nvmf_ublk::LogLevel::kDebug
                            : level == "info"  ? nvmf_ublk::LogLevel::kInfo
                            : level == "error" ? nvmf_ublk::LogLevel::kError
                                               : nvmf_ublk::LogLevel::kWarning);
  return nvmf_ublk::bench::Run(cfg);
}
