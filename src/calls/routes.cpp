#include "calls/routes.hpp"

#include "http/dispatcher.hpp"

#include <boost/json/array.hpp>
#include <boost/url/parse_query.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <set>
#include <utility>

namespace callgate::calls {
namespace {

constexpr std::array<std::string_view, 6> kParameters{"status", "to_number", "since",
                                                      "until",  "cursor",    "limit"};
constexpr std::size_t kMaxCursorLength = 64;

bool AllDigits(std::string_view text) {
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

int Digits(std::string_view text) {
  int value = 0;
  for (const char c : text)
    value = value * 10 + (c - '0');
  return value;
}

// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
std::int64_t DaysFromCivil(std::int64_t year, unsigned month, unsigned day) {
  year -= month <= 2 ? 1 : 0;
  const std::int64_t era = (year >= 0 ? year : year - 399) / 400;
  const auto yoe = static_cast<unsigned>(year - era * 400);
  const unsigned doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

unsigned DaysInMonth(int year, int month) {
  static constexpr std::array<unsigned, 12> kDays{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : kDays[static_cast<std::size_t>(month - 1)];
}

std::optional<std::int64_t> ParseIso8601(std::string_view text) {
  // YYYY-MM-DD
  if (text.size() < 10 || text[4] != '-' || text[7] != '-') return std::nullopt;
  const std::string_view y = text.substr(0, 4);
  const std::string_view mo = text.substr(5, 2);
  const std::string_view d = text.substr(8, 2);
  if (!AllDigits(y) || !AllDigits(mo) || !AllDigits(d)) return std::nullopt;
  const int year = Digits(y);
  const int month = Digits(mo);
  const int day = Digits(d);
  if (month < 1 || month > 12 || day < 1 || static_cast<unsigned>(day) > DaysInMonth(year, month))
    return std::nullopt;
  std::int64_t ms =
      DaysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) * 86'400'000;
  if (text.size() == 10) return ms;

  // THH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)
  std::string_view rest = text.substr(10);
  if (rest.size() < 10 || rest[0] != 'T' || rest[3] != ':' || rest[6] != ':') return std::nullopt;
  const std::string_view h = rest.substr(1, 2);
  const std::string_view mi = rest.substr(4, 2);
  const std::string_view s = rest.substr(7, 2);
  if (!AllDigits(h) || !AllDigits(mi) || !AllDigits(s)) return std::nullopt;
  const int hour = Digits(h);
  const int minute = Digits(mi);
  const int second = Digits(s);
  if (hour > 23 || minute > 59 || second > 59) return std::nullopt;
  ms += (hour * 3600LL + minute * 60LL + second) * 1000;
  rest = rest.substr(9);
  if (!rest.empty() && rest[0] == '.') {
    std::size_t n = 1;
    while (n < rest.size() && std::isdigit(static_cast<unsigned char>(rest[n])))
      ++n;
    if (n == 1 || n > 10) return std::nullopt;  // 1..9 fraction digits
    const std::string_view fraction = rest.substr(1, n - 1);
    int millis = 0;
    for (std::size_t i = 0; i < 3; ++i)
      millis = millis * 10 + (i < fraction.size() ? fraction[i] - '0' : 0);
    ms += millis;  // finer digits are truncated
    rest = rest.substr(n);
  }
  if (rest == "Z") return ms;
  if (rest.size() != 6 || (rest[0] != '+' && rest[0] != '-') || rest[3] != ':') return std::nullopt;
  const std::string_view oh = rest.substr(1, 2);
  const std::string_view om = rest.substr(4, 2);
  if (!AllDigits(oh) || !AllDigits(om)) return std::nullopt;
  const int offset_hours = Digits(oh);
  const int offset_minutes = Digits(om);
  if (offset_hours > 23 || offset_minutes > 59) return std::nullopt;
  const std::int64_t offset_ms = (offset_hours * 3600LL + offset_minutes * 60LL) * 1000;
  // Local time = UTC + offset, so UTC = local - offset.
  return rest[0] == '+' ? ms - offset_ms : ms + offset_ms;
}

http::Response QueryErrorResponse(const QueryError& error, std::string_view request_id) {
  return http::ErrorResponse(400, "invalid_query", error.message, request_id,
                             {{"parameter", error.parameter}});
}

}  // namespace

bool IsE164(std::string_view number) {
  if (number.size() < 3 || number.size() > 16 || number[0] != '+' || number[1] == '0') return false;
  return AllDigits(number.substr(1));
}

std::optional<std::int64_t> ParseTimeParameter(std::string_view text) {
  if (AllDigits(text)) {
    if (text.size() > 11) return std::nullopt;  // beyond year 5000
    std::int64_t seconds = 0;
    std::from_chars(text.data(), text.data() + text.size(), seconds);
    return seconds * 1000;
  }
  return ParseIso8601(text);
}

ParsedListQuery ParseListQuery(std::string_view raw_query) {
  ParsedListQuery parsed;
  auto fail = [&](std::string parameter, std::string message) {
    parsed.error = QueryError{std::move(parameter), std::move(message)};
    return parsed;
  };
  const auto params = boost::urls::parse_query(raw_query);
  if (!params) return fail("", "the query string is not well-formed");
  boost::urls::encoding_opts opts;
  opts.space_as_plus = true;
  std::set<std::string, std::less<>> seen;
  ListQuery& query = parsed.query;
  for (const auto& param : *params) {
    const std::string name = param.key.decode(opts);
    const std::string value = param.has_value ? param.value.decode(opts) : std::string();
    if (std::find(kParameters.begin(), kParameters.end(), name) == kParameters.end()) {
      return fail(name, "unknown query parameter '" + name +
                            "'; accepted: status, to_number, since, until, cursor, limit");
    }
    if (!seen.insert(name).second) return fail(name, "'" + name + "' is given more than once");
    if (name == "status") {
      query.status = ParseCallStatus(value);
      if (!query.status) {
        return fail(name,
                    "status must be one of queued, initiated, in-progress, processing, "
                    "done, failed; got '" +
                        value + "'");
      }
    } else if (name == "to_number") {
      // An unencoded '+' decodes as a space: read it back as the '+' it was meant to be.
      std::string number = value;
      if (!number.empty() && number[0] == ' ') number[0] = '+';
      if (!IsE164(number)) {
        return fail(name,
                    "to_number must be an E.164 number such as +15551234567 (encode '+' as "
                    "%2B); got '" +
                        value + "'");
      }
      query.to_number = std::move(number);
    } else if (name == "since" || name == "until") {
      const auto ms = value.size() <= 40 ? ParseTimeParameter(value) : std::nullopt;
      if (!ms) {
        return fail(name, name +
                              " must be unix seconds (e.g. 1700000000) or an ISO-8601 date or "
                              "time (e.g. 2023-11-14 or 2023-11-14T22:13:20Z); got '" +
                              value.substr(0, 40) + "'");
      }
      (name == "since" ? query.since_ms : query.until_ms) = ms;
    } else if (name == "cursor") {
      if (value.empty() || value.size() > kMaxCursorLength) {
        return fail(name, "cursor must be the next_cursor of a previous page");
      }
      query.cursor = value;
    } else if (name == "limit") {
      std::size_t limit = 0;
      const bool ok =
          AllDigits(value) && value.size() <= 3 &&
          std::from_chars(value.data(), value.data() + value.size(), limit).ec == std::errc{} &&
          limit >= 1 && limit <= ListQuery::kMaxLimit;
      if (!ok) {
        return fail(name, "limit must be an integer from 1 to " +
                              std::to_string(ListQuery::kMaxLimit) + "; got '" +
                              value.substr(0, 20) + "'");
      }
      query.limit = limit;
    }
  }
  if (query.since_ms && query.until_ms && *query.since_ms >= *query.until_ms) {
    return fail("until", "until must be later than since");
  }
  return parsed;
}

http::Response LedgerErrorResponse(const boost::system::error_code& error,
                                   std::string_view request_id) {
  if (error.category() == LedgerCategory()) {
    switch (static_cast<LedgerErrc>(error.value())) {
      case LedgerErrc::kNotFound:
        return http::ErrorResponse(404, "call_not_found", "no call with that id", request_id);
      case LedgerErrc::kConflict:
        return http::ErrorResponse(409, "conflict", error.message(), request_id);
      case LedgerErrc::kInvalidCursor:
        return http::ErrorResponse(400, "invalid_cursor",
                                   "cursor is not a next_cursor this server produced", request_id,
                                   {{"parameter", "cursor"}});
      case LedgerErrc::kBusy: {
        http::Response response = http::ErrorResponse(
            503, "storage_busy", "the call ledger is busy; retry shortly", request_id);
        response.headers.Set("Retry-After", "1");
        return response;
      }
      case LedgerErrc::kStorage:
        break;
    }
  }
  return http::ErrorResponse(500, "storage_error", "the call ledger could not be read or written",
                             request_id);
}

void AddLedgerRoutes(http::Router& router, CallLedger& ledger) {
  router.Add("GET", "/api/calls",
             [&ledger](http::Request request, http::Responder responder) {
               ParsedListQuery parsed = ParseListQuery(request.query);
               if (parsed.error) {
                 responder.Send(QueryErrorResponse(*parsed.error, request.request_id));
                 return;
               }
               ledger.List(std::move(parsed.query), [responder, request_id = request.request_id](
                                                        LedgerResult<CallPage> page) {
                 if (!page) {
                   responder.Send(LedgerErrorResponse(page.error(), request_id));
                   return;
                 }
                 boost::json::array calls;
                 calls.reserve(page->calls.size());
                 for (const CallRecord& record : page->calls)
                   calls.emplace_back(ToJson(record, JsonDetail::kSummary));
                 boost::json::value next = nullptr;
                 if (page->next_cursor) next = *page->next_cursor;
                 responder.Send(http::Response::Json(200, {{"calls", std::move(calls)},
                                                           {"next_cursor", std::move(next)},
                                                           {"has_more", page->has_more}}));
               });
             },
             {.requires_api_key = true});

  router.Add("GET", "/api/calls/{call_id}",
             [&ledger](http::Request request, http::Responder responder) {
               std::string call_id(request.PathParam("call_id"));
               ledger.Get(std::move(call_id), [responder, request_id = request.request_id](
                                                  LedgerResult<CallRecord> record) {
                 if (!record) {
                   responder.Send(LedgerErrorResponse(record.error(), request_id));
                   return;
                 }
                 responder.Send(http::Response::Json(200, ToJson(*record)));
               });
             },
             {.requires_api_key = true});
}

}  // namespace callgate::calls
