#include "tcp/crc32c.h"

#include <isa-l/crc.h>

#include <climits>

namespace nvmf_ublk::tcp {

uint32_t Crc32cExtend(uint32_t state, const void* data, size_t len) {
  auto* p =
      static_cast<unsigned char*>(const_cast<void*>(data));  // ISA-L takes a non-const pointer.
  while (len > 0) {
    const int chunk = len > static_cast<size_t>(INT_MAX) ? INT_MAX : static_cast<int>(len);
    state = crc32_iscsi(p, chunk, state);
    p += chunk;
    len -= static_cast<size_t>(chunk);
  }
  return state;
}

}  // namespace nvmf_ublk::tcp
