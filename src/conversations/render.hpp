// The gateway's view of one ElevenLabs conversation: from the upstream object
// (GET /v1/convai/conversations/{id}, elevenlabs-api.md §3.1) to the answer of
// GET /api/conversations/{id}. Pure: no I/O, no clock, no logging; thread-safe.
//
// The answer, member by member:
//   conversation_id       upstream conversation_id (string), else null
//   status                upstream status (initiated | in-progress | processing | done | failed),
//                         else null
//   agent_id              upstream agent_id (string), else null
//   transcript            [{role, message, time_in_call_secs}] in upstream order, exactly those
//                         three members. A turn whose message is null or not a string (a tool
//                         call or tool result turn) is KEPT with message "" so the turns keep
//                         their upstream positions and times; its tool details stay in
//                         upstream.transcript[i]. role is the upstream string ("agent" | "user"),
//                         "unknown" when missing; time_in_call_secs is the upstream number, null
//                         when missing or not a number.
//   transcript_text       one line per turn with a non-empty message, "Agent: ..." / "User: ...",
//                         joined with '\n' (no trailing newline); "" when there is none. A role
//                         other than agent/user is written capitalised as given.
//   recording_url         the URL given by the caller, or null when the upstream says
//                         has_audio: false (only an explicit false: a missing or mistyped
//                         has_audio keeps the URL, whose route answers 404 with a reason when
//                         there is no recording)
//   duration_secs         metadata.call_duration_secs (number), else null
//   start_time_unix_secs  metadata.start_time_unix_secs (number), else null
//   termination_reason    metadata.termination_reason, only when a non-empty string
//   analysis              upstream analysis when an object, else null
//   upstream              the whole upstream object, unchanged
// Missing or mistyped optional fields never throw: they become null (or are left out, for
// termination_reason).
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <string>
#include <string_view>

namespace callgate::conversations {

boost::json::object RenderConversation(const boost::json::object& upstream,
                                       std::string_view recording_url);

// The same answer as JSON text, for the route: the other members are written as text directly
// (no tree of the summary), and `upstream` is spliced in as `upstream_text`, the JSON text it
// was parsed from, instead of being serialized again (it was about a fifth of the CPU of a
// proxied GET). The same value as RenderConversation's; the upstream part keeps the upstream's
// own formatting.
std::string RenderConversationText(const boost::json::object& upstream,
                                   std::string_view upstream_text, std::string_view recording_url);

// The `transcript` member above, from the upstream `transcript` value (anything but an array
// gives an empty array; items that are not objects are skipped), allocated from `storage`.
boost::json::array RenderTranscript(const boost::json::value* upstream_transcript,
                                    boost::json::storage_ptr storage = {});

// The `transcript_text` member above, from a transcript rendered by RenderTranscript.
std::string TranscriptText(const boost::json::array& transcript);

}  // namespace callgate::conversations
