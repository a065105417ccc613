// Test helper: HMAC-SHA256 computed by the openssl command-line tool, independent of the code
// under test (which uses libcrypto's EVP_MAC).
#pragma once

#include "support/process.hpp"

#include <cstdio>
#include <fstream>
#include <string>
#include <string_view>

namespace callgate::webhook::testing {

// `openssl dgst -sha256 -hmac <secret> -r <file with data>`; the secret must be shell-safe.
// Empty on failure.
inline std::string OpensslHmacHex(const std::string& secret, std::string_view data) {
  callgate::testing::TempDir dir;
  const auto file = dir.path() / "signed";
  {
    std::ofstream out(file, std::ios::binary);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
  }
  const std::string command =
      "openssl dgst -sha256 -hmac '" + secret + "' -r '" + file.string() + "' 2>/dev/null";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return {};
  std::string output;
  char buffer[256];
  while (std::fgets(buffer, sizeof buffer, pipe) != nullptr)
    output += buffer;
  ::pclose(pipe);
  // "-r" prints "<hex> *<file>".
  const auto space = output.find(' ');
  return space == std::string::npos ? std::string() : output.substr(0, space);
}

}  // namespace callgate::webhook::testing
