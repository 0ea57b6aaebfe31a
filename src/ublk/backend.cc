#include "ublk/backend.h"

namespace nvmf_ublk::ublk {

void BlockIo::Complete(int result) { sink_->OnBlockIoComplete(this, result); }

const char* ToString(BlockIo::Op op) {
  switch (op) {
    case BlockIo::kRead:
      return "read";
    case BlockIo::kWrite:
      return "write";
    case BlockIo::kFlush:
      return "flush";
    case BlockIo::kDiscard:
      return "discard";
    case BlockIo::kWriteZeroes:
      return "write-zeroes";
  }
  return "?";
}

}  // namespace nvmf_ublk::ublk
