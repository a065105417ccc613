// Logging setup: one spdlog configuration for the whole process.
//
// Development: human-readable lines on stderr. Production: one JSON object per line
// ({"time","level","logger","msg"} plus, for access records, the request's fields).
// Levels follow outcomes: error = we failed the caller, warn = a client or peer misbehaved,
// info = lifecycle, debug = per-request/per-frame detail. No secret is ever passed to a logger.
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string>
#include <string_view>

namespace callgate::core {

enum class LogFormat { kText, kJson };

// Installs the default logger ("callgate") and the "access" logger. Safe to call again
// (tests, CLI subcommands); replaces the previous configuration.
void SetupLogging(spdlog::level::level_enum level, LogFormat format);

LogFormat CurrentLogFormat();

// The logger for the HTTP access log.
std::shared_ptr<spdlog::logger> AccessLogger();

// Escapes a string for inclusion inside a JSON string literal (no surrounding quotes).
std::string JsonEscape(std::string_view text);

}  // namespace callgate::core
