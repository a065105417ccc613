// What the operator sees when a post-call event is stored: a readable multi-line banner for a
// terminal (like the seed service printed) or one JSON line for production logs. Pure: the
// renderers return strings; BannerSink hands them to an injected writer.
//
// Untrusted text (transcripts, ids) is made safe for a terminal: control characters and escape
// sequences are replaced, long fields are cut at a UTF-8 boundary with a marker, and very long
// transcripts show their first turns and a count of the rest. Nothing secret is rendered: the
// stored event carries no signature or secret, and the audio bytes are never printed.
#pragma once

#include "webhook/inbox.hpp"

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace callgate::webhook {

struct BannerOptions {
  std::size_t max_field_chars = 500;      // ids, status, summary, URL
  std::size_t max_message_chars = 2'000;  // one transcript turn
  std::size_t max_turns = 200;            // then "... N more turns"
  std::size_t width = 72;                 // of the rule lines
};

// The multi-line banner, ending with a newline. `recording_url` may be empty.
std::string RenderBanner(const StoredEvent& event, std::string_view recording_url,
                         const BannerOptions& options = {});

// One JSON object, no newline: event id, type, conversation, source, verification, status,
// duration, turn count, call_successful / failure_reason, recording URL. No transcript text.
std::string RenderLogLine(const StoredEvent& event, std::string_view recording_url);

// `text` made safe for a terminal: tabs and line breaks become spaces, other control characters
// (C0, DEL and the C1 range, which includes the 8-bit CSI) become '?'; cut to at most
// `max_chars` bytes at a UTF-8 boundary, with "..." appended when cut. Exposed for tests.
std::string SanitizeForTerminal(std::string_view text, std::size_t max_chars);

enum class BannerMode {
  kQuiet,  // nothing (--quiet)
  kText,   // RenderBanner (development terminals)
  kJson,   // RenderLogLine (production)
};

// An EventSink that renders each stored event and passes it to `write` (stdout, a logger...).
// `recording_url(conversation_id)` gives the URL to show, or empty. Runs on the inbox's
// database thread, so `write` should be quick.
class BannerSink final : public EventSink {
 public:
  using Writer = std::function<void(const std::string& text)>;
  using UrlFor = std::function<std::string(std::string_view conversation_id)>;
  BannerSink(BannerMode mode, Writer write, UrlFor recording_url = {}, BannerOptions options = {});
  void OnStored(const StoredEvent& event) override;

 private:
  BannerMode mode_;
  Writer write_;
  UrlFor recording_url_;
  BannerOptions options_;
};

}  // namespace callgate::webhook
