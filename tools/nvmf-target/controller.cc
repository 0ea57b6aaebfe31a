#include "controller.h"

#include <algorithm>

#include "connection.h"

namespace nvmf_ublk::target {

Controller::Controller(uint16_t cntlid, const Subsystem* subsystem, size_t port_index,
                       std::string hostnqn, std::array<uint8_t, 16> hostid, uint32_t kato,
                       uint16_t max_io_queues)
    : cntlid_(cntlid),
      subsystem_(subsystem),
      port_index_(port_index),
      hostnqn_(std::move(hostnqn)),
      hostid_(hostid),
      max_io_queues_(max_io_queues) {
  kato_ms = kato;
}

uint16_t Controller::max_qid() const {
  if (discovery()) return 0;
  if (!queues_set.load()) return max_io_queues_;
  const uint32_t dw0 = queues_feature.load();
  return static_cast<uint16_t>(std::min(dw0 & 0xFFFF, dw0 >> 16) + 1);
}

void Controller::AttachAdmin(Connection* conn) {
  std::lock_guard<std::mutex> lock(mu_);
  admin_ = conn;
}

void Controller::DetachAdmin(Connection* conn) {
  std::lock_guard<std::mutex> lock(mu_);
  if (admin_ == conn) admin_ = nullptr;
}

bool Controller::AttachIo(uint16_t qid, Connection* conn) {
  std::lock_guard<std::mutex> lock(mu_);
  return !removed_ && io_.emplace(qid, conn).second;
}

void Controller::DetachIo(uint16_t qid, Connection* conn) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = io_.find(qid);
  if (it != io_.end() && it->second == conn) io_.erase(it);
}

size_t Controller::io_queue_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return io_.size();
}

bool Controller::AbortOnQueue(uint16_t sqid, uint16_t cid) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = io_.find(sqid);
  return it != io_.end() && it->second->AbortHeld(cid);
}

void Controller::NotifyEvent(const nvme::AsyncEvent& event, uint32_t aec_bit) {
  if ((aec.load() & aec_bit) == 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (admin_ != nullptr) admin_->PostEvent(event);
}

void Controller::ShutdownIoQueues() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [qid, conn] : io_) conn->Shutdown();
}

void Controller::ShutdownAll() {
  std::lock_guard<std::mutex> lock(mu_);
  if (admin_ != nullptr) admin_->Shutdown();
  for (auto& [qid, conn] : io_) conn->Shutdown();
}

void Controller::Remove() {
  std::lock_guard<std::mutex> lock(mu_);
  removed_ = true;
  for (auto& [qid, conn] : io_) conn->Shutdown();
}

}  // namespace nvmf_ublk::target
