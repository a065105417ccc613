// The webhook HTTP routes. Thin: verify (signature.hpp), parse (event.hpp), store (inbox.hpp),
// render the answer.
//
//   POST /api/webhooks/elevenlabs   raw body (BodyKind::kRaw), limit max_body_bytes; not behind
//                                   API_KEYS (ElevenLabs cannot send them; the HMAC protects it).
//     200 {"status":"stored"|"duplicate","event_id":...}  only after the durable commit
//     401 signature_missing | signature_malformed | signature_mismatch |
//         timestamp_out_of_tolerance                      (error envelope, nothing stored)
//     400 invalid_json | missing_field | invalid_field | invalid_audio
//     503 inbox_busy (queues full, shutting down; Retry-After), 500 store_failed
//     With no secret configured every body is accepted and recorded as "unverified".
//   GET /api/webhooks/events        ?type=&conversation_id=&since=&until=&cursor=&limit=
//                                   (since/until: unix seconds on the received time; limit
//                                   1-1000, default 50) -> {"events":[...],"next_cursor":...}
//   GET /api/webhooks/events/{id}   the event with its raw payload and verification result (and,
//                                   when forwarding is on, its deliveries)
//   POST /api/webhooks/events/{id}/replay
//                                   forwards the event again to every target: 202
//                                   {"status":"queued","deliveries":n}; 404 event_not_found;
//                                   409 forwarding_not_configured without a forwarder
//   The GETs and the replay require an API key (RouteOptions::requires_api_key).
//
// Bodies of at least offload_bytes are verified and parsed on the inbox's file thread: hashing
// and decoding tens of megabytes must not stall an I/O thread. The Inbox and the clock must
// outlive the router.
#pragma once

#include "core/clock.hpp"
#include "http/router.hpp"
#include "webhook/forwarder.hpp"
#include "webhook/inbox.hpp"
#include "webhook/signature.hpp"

#include <cstddef>

namespace callgate::webhook {

struct WebhookRouteOptions {
  VerifyOptions verify;  // secrets empty = accept unverified events
  std::size_t max_body_bytes = 64u * 1024 * 1024;
  std::size_t offload_bytes = 256u * 1024;
  Forwarder* forwarder = nullptr;  // optional; must outlive the router
};

void AddWebhookRoutes(http::Router& router, Inbox& inbox, const core::Clock& clock,
                      WebhookRouteOptions options = {});

// JSON views, shared with the CLI and tests.
boost::json::object EventRecordJson(const EventRecord& record, bool with_payload);
boost::json::object DeliveryJson(const Delivery& delivery);

}  // namespace callgate::webhook
