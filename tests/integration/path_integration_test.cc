// ControllerPath against a real engine and tools/nvmf-target: a ublk queue whose index has no I/O
// queue on its own reactor (a recovered device with more hardware queues than the controller now
// grants) still submits and completes on its own reactor, never touching the I/O queue's reactor
// state from another thread.
#include <future>

#include "base/testing/status_matchers.h"
#include "gtest/gtest.h"
#include "io/engine.h"
#include "multipath/path.h"
#include "tests/integration/engine_harness.h"

namespace nvmf_ublk::multipath {
namespace {

using ::nvmf_ublk::testing::IsOk;

class Recorder final : public io::IoCallback {
 public:
  void OnIoDone(io::IoRequest*, const io::IoResult& result) override {
    done.set_value({result, io::Reactor::Current()});
  }
  std::promise<std::pair<io::IoResult, io::Reactor*>> done;
};

TEST(PathIntegrationTest, QueueWithoutItsOwnIoQueueHopsAndComesBack) {
  target::Target target(io::testing::OneNamespaceTarget(1 << 20, 512));
  auto ports = target.Start();
  ASSERT_THAT(ports, IsOk());
  auto engine = io::Engine::Create(2);
  ASSERT_THAT(engine, IsOk());
  io::ControllerOptions o = io::testing::HostOptions((*ports)[0]);
  o.nr_io_queues = 1;  // one I/O queue, on reactor 0
  auto ctrl = io::testing::TestController::Connect(engine->get(), o);
  ASSERT_THAT(ctrl, IsOk());
  ASSERT_EQ((*ctrl)->controller()->io_queue_count(), 1u);
  ControllerPath path((*ctrl)->controller(), 1);
  io::Reactor* r1 = (*engine)->io_reactors()[1];

  std::vector<uint8_t> buf(4096, 0x5C);
  io::IoRequest req;
  req.Write(1, 0, 8, buf.data(), 4096, false);
  Recorder rec;
  req.callback = &rec;
  auto done = rec.done.get_future();
  r1->Post([&] { path.Submit(1, &req); });
  ASSERT_EQ(done.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  auto [result, where] = done.get();
  EXPECT_TRUE(result.ok()) << result.ToStatus("Write");
  EXPECT_EQ(where, r1);  // the completion came back to the submitting reactor
  EXPECT_EQ(req.callback, &rec);
  EXPECT_EQ(io::testing::TargetBytes(target, 0, 4096), buf);

  (*ctrl)->Shutdown();
}

}  // namespace
}  // namespace nvmf_ublk::multipath
