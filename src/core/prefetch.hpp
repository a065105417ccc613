// Software prefetching, for code that visits many objects cold in the cache one after another
// (the session engine's ticks: see conversation/ticker_group.hpp). A prefetch is only a hint:
// it never faults and changes nothing, so any address may be given, null included.
#pragma once

#include <cstddef>
#include <cstdint>

namespace callgate::core {

inline constexpr std::size_t kCacheLine = 64;

inline void Prefetch(const void* address) {
  __builtin_prefetch(address, 0, 3);
}

// Every cache line of [address, address + bytes); nothing for null.
inline void PrefetchLines(const void* address, std::size_t bytes) {
  if (address == nullptr) return;
  // Walk integers, not pointers: the range may end past the object (a prefetch of a line beyond
  // it is harmless, pointer arithmetic past it is not).
  const auto first = reinterpret_cast<std::uintptr_t>(address) & ~(kCacheLine - 1);
  const auto end = reinterpret_cast<std::uintptr_t>(address) + bytes;
  for (std::uintptr_t line = first; line < end; line += kCacheLine)
    Prefetch(reinterpret_cast<const void*>(line));  // NOLINT(performance-no-int-to-ptr)
}

template <typename T>
void PrefetchObject(const T* object) {
  PrefetchLines(object, sizeof(T));
}

}  // namespace callgate::core
