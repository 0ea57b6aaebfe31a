// One path to a namespace: a controller (one association through one portal) and the NSID it
// uses for the namespace. The namespace head picks a path per I/O and submits on the I/O queue
// that runs on the caller's reactor (queue index = ublk hardware queue = reactor).
#ifndef NVMF_UBLK_MULTIPATH_PATH_H_
#define NVMF_UBLK_MULTIPATH_PATH_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "io/controller.h"
#include "io/io_request.h"

namespace nvmf_ublk::multipath {

class Path {
 public:
  enum class Usability {
    kLive,        // submit now
    kConnecting,  // will come back: submitting parks the I/O until it does (or fails)
    kDown,        // gone or failing fast: do not submit
  };
  virtual ~Path() = default;
  virtual const std::string& name() const = 0;
  virtual uint32_t nsid() const = 0;
  // Reactor thread of `queue`.
  virtual Usability usability(uint16_t queue) const = 0;
  virtual void Submit(uint16_t queue, io::IoRequest* req) = 0;
  // Runs `fn` on the reactor of `queue` after `delay_ns` (Command Retry Delay).
  virtual void After(uint16_t queue, int64_t delay_ns, std::function<void()> fn) = 0;
  // CRDT[crd - 1] x 100 ms from Identify Controller (0 when unknown).
  virtual int64_t RetryDelayNs(uint8_t crd) const = 0;
};

// A path over an io::Controller.
class ControllerPath final : public Path {
 public:
  ControllerPath(io::Controller* ctrl, uint32_t nsid);
  const std::string& name() const override { return name_; }
  uint32_t nsid() const override { return nsid_; }
  Usability usability(uint16_t queue) const override;
  void Submit(uint16_t queue, io::IoRequest* req) override;
  void After(uint16_t queue, int64_t delay_ns, std::function<void()> fn) override;
  int64_t RetryDelayNs(uint8_t crd) const override;

 private:
  io::Controller* ctrl_;
  uint32_t nsid_;
  std::string name_;
  std::atomic<bool> hop_warned_{false};
};

}  // namespace nvmf_ublk::multipath

#endif  // NVMF_UBLK_MULTIPATH_PATH_H_
