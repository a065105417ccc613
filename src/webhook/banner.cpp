#include "webhook/banner.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <cmath>
#include <cstdio>
#include <exception>

namespace callgate::webhook {
namespace {

std::string Duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto total = static_cast<long long>(std::llround(std::min(seconds, 1e12)));
  char buffer[64];
  if (total < 60) {
    std::snprintf(buffer, sizeof buffer, "%lld s", total);
  } else if (total < 3600) {
    std::snprintf(buffer, sizeof buffer, "%lld:%02lld (%lld s)", total / 60, total % 60, total);
  } else {
    std::snprintf(buffer, sizeof buffer, "%lld:%02lld:%02lld (%lld s)", total / 3600,
                  (total / 60) % 60, total % 60, total);
  }
  return buffer;
}

std::string Offset(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "";
  const auto total = static_cast<long long>(std::min(seconds, 1e12));
  char buffer[48];
  std::snprintf(buffer, sizeof buffer, "[%lld:%02lld] ", total / 60, total % 60);
  return buffer;
}

std::string Speaker(std::string_view role) {
  if (role == "agent") return "Agent";
  if (role == "user") return "User";
  if (role.empty()) return "";
  std::string name(role);
  if (name[0] >= 'a' && name[0] <= 'z') name[0] = static_cast<char>(name[0] - 'a' + 'A');
  return name;
}

class Lines {
 public:
  explicit Lines(const BannerOptions& options) : options_(options) {}
  void Rule(char c) { text_ += std::string(options_.width, c) + "\n"; }
  // Appends piece by piece: g++ 12 reports a false -Wrestrict on `" " + std::string(...)`.
  void Field(std::string_view label, std::string_view value) {
    if (value.empty()) return;
    const std::size_t start = text_.size();
    text_ += ' ';
    text_ += label;
    text_ += ':';
    text_.append(std::max<std::size_t>(1, 16 - std::min<std::size_t>(16, text_.size() - start)),
                 ' ');
    text_ += SanitizeForTerminal(value, options_.max_field_chars);
    text_ += '\n';
  }
  void Raw(std::string_view line) {
    text_ += ' ';
    text_ += line;
    text_ += '\n';
  }
  std::string Take() { return std::move(text_); }

 private:
  const BannerOptions& options_;
  std::string text_;
};

}  // namespace

std::string SanitizeForTerminal(std::string_view text, std::size_t max_chars) {
  std::string out;
  out.reserve(std::min(text.size(), max_chars) + 3);
  std::size_t i = 0;
  bool cut = false;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    // The UTF-8 sequence starting here (invalid lead bytes count as one byte, replaced).
    std::size_t length = 1;
    if (c >= 0xF0 && c <= 0xF4) {
      length = 4;
    } else if (c >= 0xE0) {
      length = 3;
    } else if (c >= 0xC2 && c < 0xE0) {
      length = 2;
    }
    if (i + length > text.size()) length = 1;
    bool valid = length == 1 ? c < 0x80 : true;
    for (std::size_t k = 1; k < length && valid; ++k) {
      valid = (static_cast<unsigned char>(text[i + k]) & 0xC0) == 0x80;
    }
    std::string_view piece = text.substr(i, valid ? length : 1);
    std::string replacement;
    if (!valid) {
      replacement = "?";
    } else if (length == 1 && (c == '\n' || c == '\r' || c == '\t')) {
      replacement = " ";
    } else if (length == 1 && (c < 0x20 || c == 0x7F)) {
      replacement = "?";
    } else if (length == 2 && c == 0xC2 && static_cast<unsigned char>(text[i + 1]) < 0xA0) {
      replacement = "?";  // C1 controls U+0080-U+009F (U+009B is an 8-bit CSI)
    }
    const std::string_view emit = replacement.empty() ? piece : std::string_view(replacement);
    if (out.size() + emit.size() > max_chars) {
      cut = true;
      break;
    }
    out += emit;
    i += piece.size();
  }
  if (cut) out += "...";
  return out;
}

std::string RenderBanner(const StoredEvent& stored, std::string_view recording_url,
                         const BannerOptions& options) {
  Lines lines(options);
  lines.Rule('=');
  lines.Raw("ElevenLabs webhook: " + SanitizeForTerminal(stored.type, options.max_field_chars));
  lines.Rule('-');
  lines.Field("Event", stored.event_id);
  lines.Field("Conversation", stored.conversation_id);
  lines.Field("Agent", stored.agent_id);
  const Event* event = stored.event.get();
  const std::optional<Transcription> transcription =
      event != nullptr ? TranscriptionOf(*event) : std::nullopt;
  if (transcription) {
    const Transcription& t = *transcription;
    lines.Field("Status", t.status);
    if (t.call_duration_secs) lines.Field("Duration", Duration(*t.call_duration_secs));
    lines.Field("Result", t.call_successful);
    lines.Field("Summary", t.transcript_summary);
  }
  if (event != nullptr && event->failure) {
    std::string reason = event->failure->failure_reason;
    if (!event->failure->provider.empty()) reason += " (" + event->failure->provider + ")";
    lines.Field("Failure", reason);
  }
  std::string url(recording_url);
  if (url.empty() && transcription) url = transcription->recording_url;
  lines.Field("Recording", url);
  if (stored.recording_path) lines.Field("Audio file", stored.recording_path->string());
  lines.Field("Source", std::string(SourceName(stored.source)) + " (" + stored.verification + ")");
  const boost::json::object data =
      event != nullptr && event->kind == EventType::kOther ? DataOf(*event) : boost::json::object();
  if (!data.empty()) {
    std::string keys;
    for (const auto& field : data) {
      if (!keys.empty()) keys += ", ";
      keys += std::string(field.key());
    }
    lines.Field("Data fields", keys);
  }
  if (transcription) {
    const auto& turns = transcription->transcript;
    lines.Rule('-');
    if (turns.empty()) {
      lines.Raw("Transcript: (empty)");
    } else {
      lines.Raw("Transcript (" + std::to_string(turns.size()) +
                (turns.size() == 1 ? " turn):" : " turns):"));
      const std::size_t shown = std::min(turns.size(), options.max_turns);
      for (std::size_t i = 0; i < shown; ++i) {
        const TranscriptTurn& turn = turns[i];
        std::string line;
        if (turn.time_in_call_secs) line += Offset(*turn.time_in_call_secs);
        const std::string speaker = Speaker(turn.role);
        if (!speaker.empty()) {
          line += SanitizeForTerminal(speaker, options.max_field_chars) + ": ";
        }
        line += turn.message.empty() ? std::string("(no text)")
                                     : SanitizeForTerminal(turn.message, options.max_message_chars);
        lines.Raw(line);
      }
      if (shown < turns.size()) {
        lines.Raw("... " + std::to_string(turns.size() - shown) + " more turns");
      }
    }
  }
  lines.Rule('=');
  return lines.Take();
}

std::string RenderLogLine(const StoredEvent& stored, std::string_view recording_url) {
  boost::json::object line{{"msg", "webhook event stored"},
                           {"event_id", stored.event_id},
                           {"type", stored.type},
                           {"conversation_id", stored.conversation_id},
                           {"source", SourceName(stored.source)},
                           {"verification", stored.verification},
                           {"received_at_ms", stored.received_at_ms}};
  if (!stored.agent_id.empty()) line["agent_id"] = stored.agent_id;
  if (stored.event_timestamp) line["event_timestamp"] = *stored.event_timestamp;
  const Event* event = stored.event.get();
  if (const auto transcription = event != nullptr ? TranscriptionOf(*event) : std::nullopt) {
    const Transcription& t = *transcription;
    line["status"] = t.status;
    if (t.call_duration_secs) line["duration_secs"] = *t.call_duration_secs;
    line["turns"] = t.transcript.size();
    if (!t.call_successful.empty()) line["call_successful"] = t.call_successful;
  }
  if (event != nullptr && event->failure) {
    line["failure_reason"] = event->failure->failure_reason;
    if (!event->failure->provider.empty()) line["provider"] = event->failure->provider;
  }
  if (!recording_url.empty()) line["recording_url"] = recording_url;
  if (stored.recording_path) line["recording_file"] = stored.recording_path->string();
  return boost::json::serialize(line);
}

BannerSink::BannerSink(BannerMode mode, Writer write, UrlFor recording_url, BannerOptions options)
    : mode_(mode),
      write_(std::move(write)),
      recording_url_(std::move(recording_url)),
      options_(options) {}

void BannerSink::OnStored(const StoredEvent& event) {
  if (mode_ == BannerMode::kQuiet || !write_) return;
  const std::string url = recording_url_ ? recording_url_(event.conversation_id) : std::string();
  write_(mode_ == BannerMode::kJson ? RenderLogLine(event, url)
                                    : RenderBanner(event, url, options_));
}

}  // namespace callgate::webhook
