// ublk_ramdisk: a RAM-backed ublk device served by this project's ublk layer (UblkDevice,
// UblkQueue on io::Reactor threads, RamBackend). A test and demo tool, not the product.
//
//   ublk_ramdisk --size 64M [--lbs 512] [--pbs N] [--queues 2] [--depth 64] [--max-io 512K]
//                [--backing /dev/shm/disk.img] [--dev-id N] [--async] [--no-recovery]
//                [--latency-us N] [--no-cache] [--no-discard] [--ready-file PATH]
//   ublk_ramdisk --recover N --backing /dev/shm/disk.img [--queues ...]
//   ublk_ramdisk --delete N
//   ublk_ramdisk --info N
//
// Creates /dev/ublkb<N> (or, with --recover, takes over device N left by a killed ublk_ramdisk;
// keep the data in a --backing file under /dev/shm so it survives), prints "ready /dev/ublkbN"
// (and writes the path to --ready-file), then serves until SIGINT/SIGTERM, when it stops and
// deletes the device and prints the backend's counters. SIGUSR1 prints the counters and goes on.
// --delete stops and deletes device N whatever its state (e.g. left without a server), no serving.
// --info prints device N's state as the kernel sees it ("state QUIESCED pid 123 queues 2 ...").
#include <signal.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/log.h"
#include "io/reactor.h"
#include "ublk/control.h"
#include "ublk/device.h"
#include "ublk/testing/ram_backend.h"

namespace nvmf_ublk::ublk {
namespace {

struct Args {
  uint64_t size = 0;
  uint32_t lbs = 512;
  uint32_t pbs = 0;
  uint16_t queues = 2;
  uint16_t depth = 64;
  uint32_t max_io = 512 * 1024;
  std::string backing;
  int32_t dev_id = -1;
  int32_t recover = -1;
  int32_t del = -1;
  int32_t info = -1;
  int64_t latency_us = 0;
  bool async = false;
  bool recovery = true;
  bool cache = true;
  bool discard = true;
  std::string ready_file;
};

[[noreturn]] void Usage(const char* why) {
  std::fprintf(
      stderr,
      "ublk_ramdisk: %s\nusage: ublk_ramdisk --size BYTES[K|M|G] [--lbs 512|4096] "
      "[--pbs N] [--queues N] [--depth N] [--max-io BYTES] [--backing FILE] "
      "[--dev-id N] [--async] [--latency-us N] [--no-recovery] [--no-cache] [--no-discard] "
      "[--ready-file PATH]\n       ublk_ramdisk --recover DEV_ID --backing FILE ...\n"
      "       ublk_ramdisk --delete DEV_ID | --info DEV_ID\n",
      why);
  std::exit(2);
}

uint64_t ParseSize(std::string_view s) {
  uint64_t mult = 1;
  if (!s.empty()) {
    switch (s.back()) {
      case 'K':
      case 'k':
        mult = 1ull << 10;
        break;
      case 'M':
      case 'm':
        mult = 1ull << 20;
        break;
      case 'G':
      case 'g':
        mult = 1ull << 30;
        break;
      default:
        break;
    }
    if (mult != 1) s.remove_suffix(1);
  }
  uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) Usage("bad number");
  return v * mult;
}

Args Parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    auto value = [&]() -> std::string_view {
      if (i + 1 >= argc) Usage("missing value");
      return argv[++i];
    };
    if (arg == "--size")
      a.size = ParseSize(value());
    else if (arg == "--lbs")
      a.lbs = static_cast<uint32_t>(ParseSize(value()));
    else if (arg == "--pbs")
      a.pbs = static_cast<uint32_t>(ParseSize(value()));
    else if (arg == "--queues")
      a.queues = static_cast<uint16_t>(ParseSize(value()));
    else if (arg == "--depth")
      a.depth = static_cast<uint16_t>(ParseSize(value()));
    else if (arg == "--max-io")
      a.max_io = static_cast<uint32_t>(ParseSize(value()));
    else if (arg == "--backing")
      a.backing = value();
    else if (arg == "--dev-id")
      a.dev_id = static_cast<int32_t>(ParseSize(value()));
    else if (arg == "--recover")
      a.recover = static_cast<int32_t>(ParseSize(value()));
    else if (arg == "--delete")
      a.del = static_cast<int32_t>(ParseSize(value()));
    else if (arg == "--info")
      a.info = static_cast<int32_t>(ParseSize(value()));
    else if (arg == "--latency-us")
      a.latency_us = static_cast<int64_t>(ParseSize(value()));
    else if (arg == "--ready-file")
      a.ready_file = value();
    else if (arg == "--async")
      a.async = true;
    else if (arg == "--no-recovery")
      a.recovery = false;
    else if (arg == "--no-cache")
      a.cache = false;
    else if (arg == "--no-discard")
      a.discard = false;
    else
      Usage("unknown option");
  }
  if (a.recover < 0 && a.del < 0 && a.info < 0 && a.size == 0) Usage("--size is required");
  if (a.recover >= 0 && a.backing.empty()) Usage("--recover needs the --backing file");
  return a;
}

int Main(int argc, char** argv) {
  const Args args = Parse(argc, argv);
  // Signals are taken by sigwait in this thread only; the reactor threads inherit the mask.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  auto control = ControlDevice::Open();
  if (!control.ok()) {
    std::fprintf(stderr, "ublk_ramdisk: %s\n", control.status().ToString().c_str());
    return 1;
  }
  if (args.info >= 0) {
    auto info = (*control)->GetDeviceInfo(static_cast<uint32_t>(args.info));
    if (!info.ok()) {
      std::fprintf(stderr, "ublk_ramdisk: %s\n", info.status().ToString().c_str());
      return 1;
    }
    std::printf("state %s pid %d queues %u depth %u max_io %u flags %s\n",
                DeviceStateName(info->state), info->ublksrv_pid, info->nr_hw_queues,
                info->queue_depth, info->max_io_buf_bytes, FeatureNames(info->flags).c_str());
    return 0;
  }
  if (args.del >= 0) {
    const uint32_t id = static_cast<uint32_t>(args.del);
    absl::Status s = (*control)->StopDevice(id);
    if (s.ok()) s = (*control)->DeleteDevice(id);
    if (!s.ok()) {
      std::fprintf(stderr, "ublk_ramdisk: %s\n", s.ToString().c_str());
      return 1;
    }
    return 0;
  }
  std::vector<std::unique_ptr<io::Reactor>> reactors;
  std::vector<io::Reactor*> reactor_ptrs;
  for (uint16_t q = 0; q < args.queues; ++q) {
    reactors.push_back(std::make_unique<io::Reactor>(
        io::Reactor::Options{.entries = 512, .name = "ublk-q" + std::to_string(q)}));
    if (absl::Status s = reactors.back()->StartThread(); !s.ok()) {
      std::fprintf(stderr, "ublk_ramdisk: %s\n", s.ToString().c_str());
      return 1;
    }
    reactor_ptrs.push_back(reactors.back().get());
  }

  DeviceOptions options;
  options.dev_id = args.dev_id;
  options.nr_queues = args.queues;
  options.queue_depth = args.depth;
  options.max_io_bytes = args.max_io;
  options.recovery = args.recovery ? RecoveryMode::kReissue : RecoveryMode::kNone;

  DeviceParams params;
  params.size_bytes = args.size;
  params.logical_block_size = args.lbs;
  params.physical_block_size = args.pbs;
  params.volatile_cache = args.cache;
  params.fua = args.cache;
  if (args.discard) {
    params.max_discard_bytes = 64u << 20;
    params.max_write_zeroes_bytes = 64u << 20;
  }
  uint64_t size = args.size;
  if (args.recover >= 0) {
    // The device knows its size; the backing file must hold it.
    auto info = (*control)->GetParams(static_cast<uint32_t>(args.recover));
    if (!info.ok()) {
      std::fprintf(stderr, "ublk_ramdisk: %s\n", info.status().ToString().c_str());
      return 1;
    }
    size = info->basic.dev_sectors << 9;
  }

  testing::RamBackend::Options bopts;
  bopts.size_bytes = size;
  bopts.backing_file = args.backing;
  bopts.async = args.async || args.latency_us > 0;
  bopts.latency_ns = args.latency_us * 1000;
  bopts.reactors = reactor_ptrs;
  auto backend = testing::RamBackend::Create(bopts);
  if (!backend.ok()) {
    std::fprintf(stderr, "ublk_ramdisk: %s\n", backend.status().ToString().c_str());
    return 1;
  }

  absl::StatusOr<std::unique_ptr<UblkDevice>> dev =
      args.recover >= 0
          ? UblkDevice::Recover(control->get(), static_cast<uint32_t>(args.recover), options,
                                reactor_ptrs, backend->get())
          : UblkDevice::Create(control->get(), params, options, reactor_ptrs, backend->get());
  if (!dev.ok()) {
    std::fprintf(stderr, "ublk_ramdisk: %s\n", dev.status().ToString().c_str());
    return 1;
  }
  std::printf("ready %s\n", (*dev)->block_path().c_str());
  std::fflush(stdout);
  if (!args.ready_file.empty()) {
    const std::string tmp = args.ready_file + ".tmp";
    std::ofstream(tmp) << (*dev)->block_path() << "\n";
    std::rename(tmp.c_str(), args.ready_file.c_str());
  }

  while (true) {
    int sig = 0;
    sigwait(&sigs, &sig);
    if (sig == SIGUSR1) {
      std::printf("stats: %s\n", (*backend)->CountersLine().c_str());
      std::fflush(stdout);
      continue;
    }
    break;
  }
  const absl::Status stopped = (*dev)->Stop();
  std::printf("stats: %s\n", (*backend)->CountersLine().c_str());
  std::fflush(stdout);
  dev->reset();
  for (auto& r : reactors) r->Stop();
  for (auto& r : reactors) r->Join();
  if (!stopped.ok()) {
    std::fprintf(stderr, "ublk_ramdisk: stop: %s\n", stopped.ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace nvmf_ublk::ublk

int main(int argc, char** argv) { return nvmf_ublk::ublk::Main(argc, argv); }
