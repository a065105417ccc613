// GET /api/conversations's query string: validated, then re-encoded for the upstream
// GET /v1/convai/conversations (elevenlabs-api.md §3.2). Pure; thread-safe.
//
// Accepted parameters (a bad value, an unknown parameter or a single-valued one given twice is
// refused with a message naming the parameter and what is accepted):
//   cursor                           next_cursor of a previous page (1..1024 characters; an
//                                    empty cursor means the first page and is dropped)
//   page_size                        1..100 (the upstream default is 30)
//   agent_id, user_id, branch_id     identifiers (1..256 printable characters)
//   call_successful                  success | failure | unknown
//   call_start_before_unix,
//   call_start_after_unix            unix seconds (0..99999999999)
//   call_duration_min_secs,
//   call_duration_max_secs           seconds (0..9999999); min <= max
//   rating_min, rating_max           1..5; min <= max
//   has_feedback_comment, text_only  true | false
//   search                           free text (1..512 characters)
//   summary_mode                     exclude | include
//   conversation_initiation_source,
//   conversation_product_type        identifiers as above
//   main_languages, termination_reasons, tool_names, tool_names_successful,
//   tool_names_errored, tag_ids, topic_ids
//                                    repeatable (list filters use repeated keys upstream),
//                                    each value 1..256 printable characters, at most 50 in all
//   exclude_statuses                 repeatable; initiated | in-progress | processing | done |
//                                    failed
// Values are percent-decoded ('+' is a space) and re-encoded with upstream::EncodeComponent,
// in the order received.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace callgate::conversations {

struct ListQueryError {
  std::string parameter;  // "" when the query string itself is malformed
  std::string message;
};

struct ParsedConversationQuery {
  std::string upstream_query;  // encoded, without '?'; empty when nothing is passed on
  std::optional<ListQueryError> error;
};

ParsedConversationQuery ParseConversationQuery(std::string_view raw_query);

}  // namespace callgate::conversations
