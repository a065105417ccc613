#include "core/ids.hpp"

#include <random>

namespace callgate::core {

std::string NewId(std::string_view prefix) {
  thread_local std::mt19937_64 engine{[] {
    std::random_device device;
    std::seed_seq seed{device(), device(), device(), device()};
    return std::mt19937_64{seed};
  }()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(prefix);
  id.push_back('_');
  const std::uint64_t hi = engine();
  const std::uint64_t lo = engine();
  for (int i = 0; i < 16; ++i)
    id.push_back(kHex[(hi >> (60 - 4 * i)) & 0xF]);
  for (int i = 0; i < 8; ++i)
    id.push_back(kHex[(lo >> (60 - 4 * i)) & 0xF]);
  return id;
}

bool IsAcceptableRequestId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (const char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace callgate::core
