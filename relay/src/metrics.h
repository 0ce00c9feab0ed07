// The relay's metrics: Prometheus text exposition format 0.0.4, served by a
// minimal HTTP/1.0 responder on a loopback port (rhizome-relay --metrics).
//
// This file is the sans-IO part: rendering the counters as text, and deciding
// what to answer to the bytes of a request read so far. The Asio responder
// that reads the socket (with kMaxMetricsRequestBytes and
// kMetricsRequestTimeout) lives in server.cc.
//
// SECURITY / privacy: metrics are aggregate counts only. Nothing about a
// client (IP address, queue or board id, key, handshake hash) is ever a value
// or a label; the only label is `reason`, from protocol::RelayErrorCode names.
// The endpoint has no authentication, which is why it only listens on
// loopback (config.h, docs/relay.md).
//
// Thread safety: plain functions over values.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "rhizome/relay/engine.h"

namespace rhizome::relay {

// A metrics request (request line and headers) is at most this long.
inline constexpr std::size_t kMaxMetricsRequestBytes = 8 * 1024;
// The whole exchange (read the request, write the reply) must finish in this time.
inline constexpr std::chrono::seconds kMetricsRequestTimeout{5};
// At most this many metrics connections are served at once; more are closed.
inline constexpr std::size_t kMaxMetricsConnections = 8;

// Counters kept by the server shell (the engine keeps the rest: Stats).
struct ServerCounters {
  std::uint64_t connections_open = 0;      // accepted, handshaking or established
  std::uint64_t connections_accepted = 0;  // total
  std::uint64_t connections_refused = 0;   // total closed on accept at max_connections
  std::uint64_t handshakes_failed = 0;     // total: failed, timed out or abandoned
  std::uint64_t protocol_violations = 0;   // total connections closed for a malformed message
  std::uint64_t commits = 0;               // database commits (each holds many commands)
  std::uint64_t commit_failures = 0;       // total
};

// The Prometheus text (format 0.0.4) for these counters: a HELP and a TYPE
// line for every metric, every metric present (zero when nothing happened).
std::string RenderMetrics(const RelayEngine::Stats& engine, const ServerCounters& server);

enum class MetricsRoute {
  kIncomplete,  // read more (the header block has not ended yet)
  kMetrics,     // GET /metrics: 200 with RenderMetrics()
  kNotFound,    // GET of any other path: 404
  kBadRequest,  // anything else (other methods, malformed, too large): 400
};

// Decides what to answer to the `received` bytes of a request. The request
// line must be "GET <target> HTTP/1.<digit>"; the header block must end
// ("\r\n\r\n" or "\n\n") within kMaxMetricsRequestBytes.
MetricsRoute RouteMetricsRequest(std::string_view received);

// The complete HTTP/1.0 response for a final route (not kIncomplete): status
// line, Content-Type, Content-Length, "Connection: close", blank line, body.
// `metrics_body` is used only for kMetrics.
std::string MetricsHttpResponse(MetricsRoute route, std::string_view metrics_body);

}  // namespace rhizome::relay
