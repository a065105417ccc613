// The call ledger's read routes, and the pieces the outbound-call handler reuses (the error
// mapping for ledger errors; the call JSON is calls::ToJson in call_record.hpp).
//
//   GET /api/calls            newest first; query parameters (each at most once):
//       status     queued | initiated | in-progress | processing | done | failed
//       to_number  E.164, e.g. %2B15551234567 (an unencoded '+' arrives as a space and is read
//                  back as '+')
//       since      created at or after; unix seconds (1700000000) or ISO-8601
//                  (2023-11-14, 2023-11-14T22:13:20Z, 2023-11-14T22:13:20.5+01:00)
//       until      created before (exclusive); same formats; must be after `since`
//       cursor     `next_cursor` of the previous page
//       limit      1..100, default 30
//     answers 200 {"calls":[<call without transcript/analysis>...],"next_cursor":str|null,
//     "has_more":bool}; any other parameter, a repeated one or a bad value is a 400
//     `invalid_query` naming the parameter (details.parameter); a cursor the ledger did not
//     produce is a 400 `invalid_cursor`.
//   GET /api/calls/{call_id}  200 with the full call; 404 `call_not_found` in the envelope.
// Both require an API key (RouteOptions::requires_api_key). Storage errors: 503 `storage_busy`
// (with Retry-After) or 500 `storage_error`.
//
// The handlers answer from the ledger's callback (the database thread) through the thread-safe
// http::Responder. The ledger must outlive the router's use.
#pragma once

#include "calls/ledger.hpp"
#include "http/message.hpp"
#include "http/router.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace callgate::calls {

void AddLedgerRoutes(http::Router& router, CallLedger& ledger);

// The HTTP answer for a ledger error (the mapping above; kNotFound is 404 `call_not_found`,
// kConflict 409 `conflict`).
http::Response LedgerErrorResponse(const boost::system::error_code& error,
                                   std::string_view request_id);

// GET /api/calls's query string, parsed and validated (pure).
struct QueryError {
  std::string parameter;
  std::string message;  // names the parameter, the accepted values and what was given
};
struct ParsedListQuery {
  ListQuery query;
  std::optional<QueryError> error;  // set when the query is refused
};
ParsedListQuery ParseListQuery(std::string_view raw_query);

// Unix seconds or ISO-8601 (see above) as unix milliseconds; nothing when not understood.
std::optional<std::int64_t> ParseTimeParameter(std::string_view text);

// "+" then 2..15 digits, the first not 0.
bool IsE164(std::string_view number);

}  // namespace callgate::calls
