#include "calls/upstream_status_source.hpp"

namespace callgate::calls {

ConversationStatus StatusFromConversation(const boost::json::object& conversation) {
  ConversationStatus out;
  const auto* status = conversation.if_contains("status");
  const auto parsed = status != nullptr && status->is_string()
                          ? ParseCallStatus(std::string_view(status->as_string()))
                          : std::nullopt;
  out.status = parsed.value_or(CallStatus::kInitiated);
  if (const auto* transcript = conversation.if_contains("transcript");
      transcript != nullptr && transcript->is_array()) {
    // Into the default storage: `conversation` may live in an arena that is not ours to share.
    out.transcript = boost::json::value(*transcript, boost::json::storage_ptr());
  }
  if (const auto* analysis = conversation.if_contains("analysis");
      analysis != nullptr && analysis->is_object()) {
    out.analysis = boost::json::value(*analysis, boost::json::storage_ptr());
  }
  if (const auto* metadata = conversation.if_contains("metadata");
      metadata != nullptr && metadata->is_object()) {
    const auto& m = metadata->as_object();
    if (const auto* duration = m.if_contains("call_duration_secs");
        duration != nullptr && duration->is_number()) {
      out.duration_secs = duration->to_number<std::int64_t>();
    }
    if (out.status == CallStatus::kFailed) {
      if (const auto* reason = m.if_contains("termination_reason");
          reason != nullptr && reason->is_string() && !reason->as_string().empty()) {
        out.failure_reason = std::string(reason->as_string());
      }
    }
  }
  if (out.status == CallStatus::kFailed && !out.failure_reason) {
    out.failure_reason = "the conversation failed upstream";
  }
  return out;
}

void UpstreamStatusSource::Fetch(std::string conversation_id,
                                 std::function<void(FetchResult)> done) {
  api_.GetConversation(
      std::move(conversation_id),
      [done = std::move(done)](upstream::ApiResult<boost::json::object> result) {
        if (auto* error = std::get_if<upstream::ApiError>(&result)) {
          const bool not_found =
              error->kind == upstream::ApiError::Kind::kStatus && error->upstream_status == 404;
          done(FetchError{not_found ? FetchError::Kind::kNotFound : FetchError::Kind::kTransient,
                          error->message});
          return;
        }
        done(StatusFromConversation(std::get<boost::json::object>(result)));
      });
}

}  // namespace callgate::calls
