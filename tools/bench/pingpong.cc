// pingpong: this machine's CPU placement right now, as the round-trip time of one cache line
// bounced between two threads pinned to CPUs A and B (default 0 and 1). On the shared 2-vCPU
// machines this project is benchmarked on, it flips between ~60 ns and ~330 ns every few seconds
// to minutes, and loopback figures move 1.6-1.8x with it: benchmark scripts tag each run with it.
// Prints the median round trip in ns (or --json).
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

namespace {

void Pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

struct alignas(64) Line {
  std::atomic<uint64_t> v{0};
};

}  // namespace

int main(int argc, char** argv) {
  int a = 0, b = 1, samples = 21, trips = 20000;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--json")) {
      json = true;
    } else if (!std::strcmp(argv[i], "--cpus") && i + 1 < argc) {
      if (std::sscanf(argv[++i], "%d,%d", &a, &b) != 2) return 2;
    } else {
      std::fprintf(stderr, "usage: pingpong [--cpus A,B] [--json]\n");
      return 2;
    }
  }
  Line line;
  std::atomic<bool> stop{false};
  std::thread peer([&] {
    Pin(b);
    uint64_t expect = 1;
    while (!stop.load(std::memory_order_relaxed)) {
      if (line.v.load(std::memory_order_acquire) == expect) {
        line.v.store(expect + 1, std::memory_order_release);
        expect += 2;
      }
    }
  });
  Pin(a);
  std::vector<double> ns;
  uint64_t next = 1;
  for (int s = 0; s < samples; ++s) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < trips; ++i) {
      line.v.store(next, std::memory_order_release);
      while (line.v.load(std::memory_order_acquire) != next + 1) {
      }
      next += 2;
    }
    const auto t1 = std::chrono::steady_clock::now();
    ns.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count() / trips);
  }
  stop = true;
  peer.join();
  std::sort(ns.begin(), ns.end());
  const double median = ns[ns.size() / 2];
  if (json) {
    std::printf("{\"pingpong_ns\": %.1f, \"min_ns\": %.1f, \"max_ns\": %.1f}\n", median, ns.front(),
                ns.back());
  } else {
    std::printf("%.1f\n", median);
  }
  return 0;
}
