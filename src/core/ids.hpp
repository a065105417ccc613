// Identifiers: request ids (X-Request-Id) and other random ids.
//
// Ids are 96 random bits, hex-encoded, with a short prefix naming what they identify. They are
// unique, not secret: the generator is a per-thread PRNG seeded from std::random_device.
#pragma once

#include <string>
#include <string_view>

namespace callgate::core {

// "<prefix>_<24 hex chars>", e.g. NewId("req") == "req_5f2c0e9a1b7d44c3a8e2f019".
std::string NewId(std::string_view prefix);

// A client-supplied X-Request-Id is reused only when it is 1..128 characters of
// [A-Za-z0-9._:-], so it cannot inject anything into logs or headers.
bool IsAcceptableRequestId(std::string_view id);

}  // namespace callgate::core
