#include "core/logging.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace callgate::core {
namespace {

std::atomic<LogFormat> g_format{LogFormat::kText};  // written once at start-up

// {"time":"2026-11-22T04:21:40.123Z","level":"info","logger":"callgate","msg":"..."}
// Access records are already JSON objects (they start with '{'): their fields are merged in.
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto time = std::chrono::system_clock::to_time_t(msg.time);
    const auto millis =
        std::chrono::duration_cast<std::chrono::milliseconds>(msg.time.time_since_epoch()).count() %
        1000;
    std::tm tm{};
    gmtime_r(&time, &tm);
    char stamp[96];
    std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(millis));
    const auto level_view = spdlog::level::to_string_view(msg.level);
    const std::string_view level(level_view.data(), level_view.size());
    const std::string_view text(msg.payload.data(), msg.payload.size());
    std::string line = "{\"time\":\"";
    line += stamp;
    line += "\",\"level\":\"";
    line.append(level.data(), level.size());
    line += "\",\"logger\":\"";
    line += JsonEscape(std::string_view(msg.logger_name.data(), msg.logger_name.size()));
    line += "\",";
    if (text.size() >= 2 && text.front() == '{' && text.back() == '}') {
      line.append(text.substr(1));  // a structured record: merge its fields
    } else {
      line += "\"msg\":\"";
      line += JsonEscape(text);
      line += "\"}";
    }
    line += '\n';
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

std::shared_ptr<spdlog::logger> MakeLogger(const std::string& name, const spdlog::sink_ptr& sink) {
  if (auto existing = spdlog::get(name)) spdlog::drop(name);
  auto logger = std::make_shared<spdlog::logger>(name, sink);
  spdlog::register_logger(logger);
  return logger;
}

}  // namespace

void SetupLogging(spdlog::level::level_enum level, LogFormat format) {
  g_format = format;
  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  if (format == LogFormat::kJson) {
    sink->set_formatter(std::make_unique<JsonFormatter>());
  } else {
    sink->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ [%n] %v");
  }
  auto main_logger = MakeLogger("callgate", sink);
  auto access = MakeLogger("access", sink);
  spdlog::set_default_logger(main_logger);
  spdlog::set_level(level);
  main_logger->set_level(level);
  access->set_level(level);
  main_logger->flush_on(spdlog::level::info);
  access->flush_on(spdlog::level::info);
}

LogFormat CurrentLogFormat() {
  return g_format.load();
}

std::shared_ptr<spdlog::logger> AccessLogger() {
  auto logger = spdlog::get("access");
  return logger ? logger : spdlog::default_logger();
}

std::string JsonEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 8);
  for (const char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out;
}

}  // namespace callgate::core
