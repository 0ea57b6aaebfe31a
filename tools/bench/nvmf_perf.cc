// nvmf-perf: an I/O generator on the nvmf-ublk engine, like SPDK's spdk_nvme_perf.
//
//   nvmf-perf -a 127.0.0.1 -s 4420 -n nqn.2026-01.io.nvmf-ublk:demo -q 32 -o 4096 -w randread -t 10
//
// One worker per I/O queue, each on its own reactor thread, keeps `qd` commands in flight for the
// duration and records every command's latency. Prints IOPS, MiB/s, mean and p50/p99/p99.9/p99.99
// latency, and the process's CPU time (user+sys) so IOPS per CPU-second can be compared between
// initiators; --json for scripts.
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
#include "base/clock.h"
#include "base/log.h"
#include "io/engine.h"
#include "nlohmann/json.hpp"
#include "tools/bench/cpu_time.h"
#include "tools/bench/latency_histogram.h"

namespace nvmf_ublk::bench {
namespace {

struct Config {
  std::string traddr = "127.0.0.1";
  std::string trsvcid = "4420";
  std::string nqn;
  std::string hostnqn = "nqn.2014-08.org.nvmexpress:uuid:6e766d66-7562-6c6b-2d70-657266000000";
  uint32_t nsid = 0;
  uint32_t qd = 32;
  uint32_t io_size = 4096;
  std::string pattern = "randread";
  int mix_read = 70;
  double seconds = 10;
  double warmup = 1;
  double idle = 0;  // seconds connected and idle after the run (--idle)
  int poll_us = 0;  // reactors poll this long before sleeping (--poll-us)
  uint32_t queues = 1;
  bool hdr_digest = false;
  bool data_digest = false;
  bool json = false;
};

struct WorkerResult {
  LatencyHistogram hist;
  uint64_t ios = 0;
  uint64_t bytes = 0;
  uint64_t errors = 0;
  std::string first_error;
};

class Worker : public io::IoCallback {
 public:
  Worker(const Config& cfg, io::IoQueue* q, const io::NamespaceEntry& ns, uint32_t index,
         uint32_t count)
      : cfg_(cfg), q_(q), ns_(ns), rng_(1234 + index) {
    lba_ = ns.info.lba_bytes;
    blocks_per_io_ = cfg.io_size / lba_;
    const uint64_t total = ns.info.nsze / blocks_per_io_;  // I/O-size slots on the namespace
    // Sequential patterns: each worker streams through its own slice.
    slice_begin_ = total * index / count;
    slice_end_ = std::max<uint64_t>(slice_begin_ + 1, total * (index + 1) / count);
    slots_ = total;
    next_seq_ = slice_begin_;
    reqs_.resize(cfg.qd);
    start_ns_.resize(cfg.qd);
    bufs_.resize(cfg.qd);
    for (uint32_t i = 0; i < cfg.qd; ++i) {
      bufs_[i].reset(static_cast<uint8_t*>(std::aligned_alloc(4096, cfg.io_size)));
      std::memset(bufs_[i].get(), static_cast<int>(0xA5 ^ i), cfg.io_size);
      reqs_[i].user = i;
    }
  }

  // Reactor thread: starts the run; `done` is fulfilled when the last command completes.
  void Start(int64_t warmup_end, int64_t end, std::promise<void>* done) {
    warmup_end_ = warmup_end;
    end_ = end;
    done_ = done;
    for (auto& r : reqs_) Issue(&r);
  }

  WorkerResult& result() { return result_; }

 private:
  void Issue(io::IoRequest* r) {
    bool read;
    if (cfg_.pattern == "randread" || cfg_.pattern == "read") {
      read = true;
    } else if (cfg_.pattern == "randwrite" || cfg_.pattern == "write") {
      read = false;
    } else {
      read = static_cast<int>(rng_() % 100) < cfg_.mix_read;
    }
    uint64_t slot;
    if (cfg_.pattern == "read" || cfg_.pattern == "write") {
      slot = next_seq_++;
      if (next_seq_ >= slice_end_) next_seq_ = slice_begin_;
    } else {
      slot = rng_() % slots_;
    }
    const uint64_t slba = slot * blocks_per_io_;
    void* buf = bufs_[r->user].get();
    if (read) {
      r->Read(ns_.nsid, slba, blocks_per_io_, buf, cfg_.io_size);
    } else {
      r->Write(ns_.nsid, slba, blocks_per_io_, buf, cfg_.io_size, false);
    }
    r->callback = this;
    r->submit_ns = MonotonicNanos();
    start_ns_[r->user] = r->submit_ns;
    ++inflight_;
    q_->Submit(r);
  }

  void OnIoDone(io::IoRequest* r, const io::IoResult& res) override {
    const int64_t now = MonotonicNanos();
    --inflight_;
    if (now >= warmup_end_) {
      if (res.ok()) {
        result_.hist.Record(now - start_ns_[r->user]);
        ++result_.ios;
        result_.bytes += cfg_.io_size;
      } else {
        if (result_.errors++ == 0) result_.first_error = res.ToStatus("I/O").ToString();
      }
    }
    if (now < end_ && res.err == 0) {
      Issue(r);
    } else if (inflight_ == 0) {
      done_->set_value();
    }
  }

  const Config& cfg_;
  io::IoQueue* q_;
  const io::NamespaceEntry& ns_;
  std::mt19937_64 rng_;
  uint32_t lba_ = 512;
  uint32_t blocks_per_io_ = 1;
  uint64_t slots_ = 1, slice_begin_ = 0, slice_end_ = 1, next_seq_ = 0;
  std::vector<io::IoRequest> reqs_;
  struct FreeDeleter {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::vector<std::unique_ptr<uint8_t, FreeDeleter>> bufs_;
  std::vector<int64_t> start_ns_;
  uint32_t inflight_ = 0;
  int64_t warmup_end_ = 0, end_ = 0;
  std::promise<void>* done_ = nullptr;
  WorkerResult result_;
};

int Run(const Config& cfg) {
  auto engine = io::Engine::Create(static_cast<int>(cfg.queues), int64_t{cfg.poll_us} * 1000);
  if (!engine.ok()) {
    fprintf(stderr, "nvmf-perf: %s\n", engine.status().ToString().c_str());
    return 1;
  }
  io::ControllerOptions o;
  o.traddr = cfg.traddr;
  o.trsvcid = cfg.trsvcid;
  o.subnqn = cfg.nqn;
  o.hostnqn = cfg.hostnqn;
  o.nr_io_queues = cfg.queues;
  o.queue_size = std::max<uint32_t>(cfg.qd + 1, 32);
  o.hdr_digest = cfg.hdr_digest;
  o.data_digest = cfg.data_digest;
  o.hostid = {0x6e, 0x76, 0x6d, 0x66, 0x75, 0x62, 0x6c, 0x6b, 0x2d, 0x70, 0x65, 0x72, 0x66};
  auto ctrl = io::SyncController::Connect(engine->get(), o);
  if (!ctrl.ok()) {
    fprintf(stderr, "nvmf-perf: connect %s:%s %s: %s\n", cfg.traddr.c_str(), cfg.trsvcid.c_str(),
            cfg.nqn.c_str(), ctrl.status().ToString().c_str());
    return 1;
  }
  io::Controller* c = (*ctrl)->controller();
  const io::NamespaceEntry* ns = nullptr;
  for (const auto& e : c->namespaces()) {
    if (cfg.nsid == 0 || e.nsid == cfg.nsid) {
      ns = &e;
      break;
    }
  }
  if (ns == nullptr) {
    fprintf(stderr, "nvmf-perf: namespace %u not found\n", cfg.nsid);
    return 1;
  }
  if (cfg.io_size % ns->info.lba_bytes != 0 ||
      (c->max_transfer_bytes() && cfg.io_size > c->max_transfer_bytes())) {
    fprintf(stderr, "nvmf-perf: I/O size %u must be a multiple of the %u-byte block and <= MDTS\n",
            cfg.io_size, ns->info.lba_bytes);
    return 1;
  }
  const uint32_t queues = c->io_queue_count();
  std::vector<std::unique_ptr<Worker>> workers;
  std::vector<std::promise<void>> done(queues);
  for (uint32_t i = 0; i < queues; ++i) {
    workers.push_back(std::make_unique<Worker>(cfg, c->io_queue(i), *ns, i, queues));
  }
  const int64_t t0 = MonotonicNanos();
  const int64_t warmup_end = t0 + static_cast<int64_t>(cfg.warmup * 1e9);
  const int64_t end = warmup_end + static_cast<int64_t>(cfg.seconds * 1e9);
  for (uint32_t i = 0; i < queues; ++i) {
    Worker* w = workers[i].get();
    std::promise<void>* d = &done[i];
    c->io_queue(i)->reactor()->Post([w, warmup_end, end, d] { w->Start(warmup_end, end, d); });
  }
  // CPU time is counted from the end of the warm-up, like the I/O.
  while (MonotonicNanos() < warmup_end) usleep(1000);
  const double cpu_warm = CpuSeconds();
  for (auto& d : done) d.get_future().wait();
  const int64_t t1 = MonotonicNanos();
  const double cpu = CpuSeconds() - cpu_warm;
  const double secs = static_cast<double>(t1 - warmup_end) / 1e9;

  WorkerResult total;
  for (auto& w : workers) {
    total.hist.Merge(w->result().hist);
    total.ios += w->result().ios;
    total.bytes += w->result().bytes;
    total.errors += w->result().errors;
    if (total.first_error.empty()) total.first_error = w->result().first_error;
  }
  // Connected and idle: what the engine costs when nothing happens (keep-alive only).
  double idle_cpu = 0;
  long idle_switches = 0;
  if (cfg.idle > 0) {
    const double cpu0 = CpuSeconds();
    const long sw0 = ContextSwitches();
    usleep(static_cast<useconds_t>(cfg.idle * 1e6));
    idle_cpu = CpuSeconds() - cpu0;
    idle_switches = ContextSwitches() - sw0 - 1;  // this thread's own sleep
  }
  (*ctrl)->Disconnect();
  const double iops = static_cast<double>(total.ios) / secs;
  const double mibs = static_cast<double>(total.bytes) / secs / (1 << 20);
  auto us = [](uint64_t v) { return static_cast<double>(v) / 1000.0; };
  if (cfg.json) {
    nlohmann::json j = {{"pattern", cfg.pattern},
                        {"io_size", cfg.io_size},
                        {"qd", cfg.qd},
                        {"queues", queues},
                        {"seconds", secs},
                        {"ios", total.ios},
                        {"errors", total.errors},
                        {"iops", iops},
                        {"mib_s", mibs},
                        {"lat_mean_us", total.hist.MeanNs() / 1000.0},
                        {"lat_p50_us", us(total.hist.PercentileNs(50))},
                        {"lat_p99_us", us(total.hist.PercentileNs(99))},
                        {"lat_p999_us", us(total.hist.PercentileNs(99.9))},
                        {"lat_p9999_us", us(total.hist.PercentileNs(99.99))},
                        {"lat_max_us", us(total.hist.MaxNs())},
                        {"cpu_s", cpu},
                        {"iops_per_cpu_s", cpu > 0 ? static_cast<double>(total.ios) / cpu : 0},
                        {"poll_us", cfg.poll_us},
                        {"idle_s", cfg.idle},
                        {"idle_cpu_s", idle_cpu},
                        {"idle_wakeups", idle_switches},
                        {"hdr_digest", cfg.hdr_digest},
                        {"data_digest", cfg.data_digest}};
    printf("%s\n", j.dump().c_str());
  } else {
    printf("%s %u B qd %u x %u queue(s), %.1f s%s%s\n", cfg.pattern.c_str(), cfg.io_size, cfg.qd,
           queues, secs, cfg.hdr_digest ? ", hdgst" : "", cfg.data_digest ? ", ddgst" : "");
    printf("  IOPS %.0f   %.1f MiB/s   errors %llu\n", iops, mibs,
           static_cast<unsigned long long>(total.errors));
    printf("  latency us: mean %.1f  p50 %.1f  p99 %.1f  p99.9 %.1f  p99.99 %.1f  max %.1f\n",
           total.hist.MeanNs() / 1000.0, us(total.hist.PercentileNs(50)),
           us(total.hist.PercentileNs(99)), us(total.hist.PercentileNs(99.9)),
           us(total.hist.PercentileNs(99.99)), us(total.hist.MaxNs()));
    printf("  CPU %.2f s (user+sys) = %.0f IOPS per CPU-second\n", cpu,
           cpu > 0 ? static_cast<double>(total.ios) / cpu : 0.0);
    if (cfg.idle > 0) {
      printf("  idle %.1f s connected: CPU %.1f ms, %ld wakeups (context switches)\n", cfg.idle,
             idle_cpu * 1e3, idle_switches);
    }
  }
  if (total.errors) {
    fprintf(stderr, "nvmf-perf: %llu I/O errors, first: %s\n",
            static_cast<unsigned long long>(total.errors), total.first_error.c_str());
    return 2;
  }
  return 0;
}

}  // namespace
}  // namespace nvmf_ublk::bench

int main(int argc, char** argv) {
  using nvmf_ublk::bench::Config;
  Config cfg;
  CLI::App app{"nvmf-perf: NVMe/TCP I/O generator on the nvmf-ublk engine"};
  app.add_option("-a,--traddr", cfg.traddr, "target address")->capture_default_str();
  app.add_option("-s,--trsvcid", cfg.trsvcid, "target port")->capture_default_str();
  app.add_option("-n,--nqn", cfg.nqn, "subsystem NQN")->required();
  app.add_option("-q,--hostnqn", cfg.hostnqn, "host NQN")->capture_default_str();
  app.add_option("--nsid", cfg.nsid, "namespace ID (default: the first)");
  app.add_option("-Q,--qd", cfg.qd, "queue depth per queue")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("-o,--io-size", cfg.io_size, "I/O size in bytes")
      ->check(CLI::Range(512, 1 << 24))
      ->capture_default_str();
  app.add_option("-w,--pattern", cfg.pattern, "randread|randwrite|read|write|randrw")
      ->check(CLI::IsMember({"randread", "randwrite", "read", "write", "randrw"}))
      ->capture_default_str();
  app.add_option("-M,--mix-read", cfg.mix_read, "randrw: percent reads")->check(CLI::Range(0, 100));
  app.add_option("-t,--time", cfg.seconds, "seconds to measure")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--warmup", cfg.warmup, "seconds before measuring")->capture_default_str();
  app.add_option("-c,--queues", cfg.queues, "I/O queues (one reactor thread each)")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_flag("--hdr-digest", cfg.hdr_digest, "enable the header digest");
  app.add_flag("--data-digest", cfg.data_digest, "enable the data digest");
  app.add_flag("--json", cfg.json, "one JSON object on stdout");
  app.add_option("--poll-us", cfg.poll_us,
                 "reactors look for completions this many microseconds before sleeping")
      ->check(CLI::Range(0, 1000000));
  app.add_option("--idle", cfg.idle,
                 "then stay connected and idle this many seconds: report its CPU time and wakeups")
      ->check(CLI::Range(0.0, 3600.0));
  bool verbose = false;
  app.add_flag("-v,--verbose", verbose, "log controller events");
  CLI11_PARSE(app, argc, argv);
  nvmf_ublk::SetMinLogLevel(verbose ? nvmf_ublk::LogLevel::kInfo : nvmf_ublk::LogLevel::kWarning);
  return nvmf_ublk::bench::Run(cfg);
}
