// Little-endian loads and stores, plus Le16/Le32/Le64 wire field types.
//
// Wire structures (NVMe SQE/CQE, NVMe/TCP PDUs) are declared as plain data built from these types:
// byte arrays with alignment 1, so a struct's layout is exactly the spec's, `offsetof` is
// checkable, and every access goes through an explicit little-endian conversion.
#ifndef NVMF_UBLK_BASE_ENDIAN_H_
#define NVMF_UBLK_BASE_ENDIAN_H_

#include <cstdint>
#include <cstring>

namespace nvmf_ublk {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ || __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__);

template <typename T>
inline T LoadLe(const void* p) {
  T v;
  std::memcpy(&v, p, sizeof(v));
  if constexpr (__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__) {
    if constexpr (sizeof(T) == 2) v = __builtin_bswap16(v);
    if constexpr (sizeof(T) == 4) v = __builtin_bswap32(v);
    if constexpr (sizeof(T) == 8) v = __builtin_bswap64(v);
  }
  return v;
}

template <typename T>
inline void StoreLe(void* p, T v) {
  if constexpr (__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__) {
    if constexpr (sizeof(T) == 2) v = __builtin_bswap16(v);
    if constexpr (sizeof(T) == 4) v = __builtin_bswap32(v);
    if constexpr (sizeof(T) == 8) v = __builtin_bswap64(v);
  }
  std::memcpy(p, &v, sizeof(v));
}

inline uint16_t LoadLe16(const void* p) { return LoadLe<uint16_t>(p); }
inline uint32_t LoadLe32(const void* p) { return LoadLe<uint32_t>(p); }
inline uint64_t LoadLe64(const void* p) { return LoadLe<uint64_t>(p); }
inline void StoreLe16(void* p, uint16_t v) { StoreLe<uint16_t>(p, v); }
inline void StoreLe32(void* p, uint32_t v) { StoreLe<uint32_t>(p, v); }
inline void StoreLe64(void* p, uint64_t v) { StoreLe<uint64_t>(p, v); }

// A little-endian integer field of a wire structure. Alignment 1, no padding.
template <typename T>
struct LeField {
  uint8_t bytes[sizeof(T)];
  T get() const { return LoadLe<T>(bytes); }
  void set(T v) { StoreLe<T>(bytes, v); }
};
using Le16 = LeField<uint16_t>;
using Le32 = LeField<uint32_t>;
using Le64 = LeField<uint64_t>;
static_assert(sizeof(Le16) == 2 && alignof(Le16) == 1);
static_assert(sizeof(Le32) == 4 && alignof(Le32) == 1);
static_assert(sizeof(Le64) == 8 && alignof(Le64) == 1);

}  // namespace nvmf_ublk

#endif  // NVMF_UBLK_BASE_ENDIAN_H_
