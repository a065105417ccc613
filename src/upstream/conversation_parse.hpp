// GET /v1/convai/conversations/{id}, parsed for the gateway's answer: one pass over the text
// that checks all of it but builds only the members conversations/render.hpp reads.
//
// Kept (everything else is checked and dropped):
//   conversation_id, status, agent_id, has_audio          whole values
//   transcript                                            an array: its object items, each with
//                                                         only role, message, time_in_call_secs
//                                                         (items that are not objects dropped)
//   metadata                                              an object: only call_duration_secs,
//                                                         start_time_unix_secs, termination_reason
//   analysis                                              whole
// A kept member of another type than the one listed (a transcript that is an object, say) is
// kept whole. The values are the ones a full parse gives: the same parser builds them, with the
// same limits, and a repeated key keeps its last value. For a 2.7 KB conversation this builds a
// few dozen values instead of a few hundred (the tree parse was about a quarter of a proxied GET's
// instructions). The caller sends the upstream's own text for `upstream` (RenderConversationText).
#pragma once

#include <boost/json/storage_ptr.hpp>
#include <boost/json/value.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <string_view>

namespace callgate::upstream {

struct ConversationParse {
  boost::json::value root;  // the pruned document (an object for a conversation)
  boost::system::error_code error;
  std::size_t consumed = 0;  // bytes read before the error (all of them on success)
};

// `storage` holds the values built (an arena, typically). Errors are those of
// boost::json::parse for the same text, including extra_data for bytes after the document.
ConversationParse ParseConversationForRender(std::string_view text,
                                             boost::json::storage_ptr storage = {});

}  // namespace callgate::upstream
