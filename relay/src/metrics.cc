#include "metrics.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <iterator>

#include "rhizome/protocol/relay_messages.h"

namespace rhizome::relay {

namespace {

using protocol::RelayErrorCode;

struct ReasonName {
  RelayErrorCode code;
  const char* label;
};
// Label values of rhizome_relay_rejections_total (docs/relay.md).
constexpr ReasonName kReasons[] = {
    {RelayErrorCode::kMalformed, "malformed"},
    {RelayErrorCode::kAuth, "auth"},
    {RelayErrorCode::kDuplicateCorrId, "duplicate_corr_id"},
    {RelayErrorCode::kQuota, "quota"},
    {RelayErrorCode::kRateLimited, "rate_limited"},
    {RelayErrorCode::kTooLarge, "too_large"},
    {RelayErrorCode::kAlreadySet, "already_set"},
    {RelayErrorCode::kUnsupported, "unsupported"},
    {RelayErrorCode::kInternal, "internal"},
};

class Writer {
 public:
  void Metric(const char* name, const char* type, const char* help, std::uint64_t value) {
    Header(name, type, help);
    Sample(name, nullptr, value);
  }
  void Header(const char* name, const char* type, const char* help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  // `reason` is one of the static label values above (no escaping needed).
  void Sample(const char* name, const char* reason, std::uint64_t value) {
    out_ += name;
    if (reason != nullptr) {
      out_ += "{reason=\"";
      out_ += reason;
      out_ += "\"}";
    }
    char number[24];
    std::snprintf(number, sizeof(number), " %" PRIu64 "\n", value);
    out_ += number;
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.substr(0, prefix.size()) == prefix;
}

}  // namespace

std::string RenderMetrics(const RelayEngine::Stats& e, const ServerCounters& s) {
  Writer w;
  w.Metric("rhizome_relay_connections", "gauge",
           "Open client connections (accepted, handshaking or established).", s.connections_open);
  w.Metric("rhizome_relay_connections_established", "gauge",
           "Client connections that finished the handshake.", e.connections);
  w.Metric("rhizome_relay_connections_accepted_total", "counter", "Client connections accepted.",
           s.connections_accepted);
  w.Metric("rhizome_relay_connections_refused_total", "counter",
           "Client connections closed on accept because max_connections were open.",
           s.connections_refused);
  w.Metric("rhizome_relay_handshakes_failed_total", "counter",
           "Handshakes that failed, timed out or were abandoned.", s.handshakes_failed);
  w.Metric("rhizome_relay_protocol_violations_total", "counter",
           "Connections closed for a malformed or out-of-place message.", s.protocol_violations);
  w.Metric("rhizome_relay_messages_stored_total", "counter", "Messages accepted into mailboxes.",
           e.messages_stored);
  w.Metric("rhizome_relay_messages_delivered_total", "counter",
           "Messages pushed to subscribers or returned by GET.", e.messages_delivered);
  w.Metric("rhizome_relay_messages_expired_total", "counter",
           "Messages and board items deleted at expiry.", e.messages_expired);
  w.Metric("rhizome_relay_stored_bytes", "gauge", "Bytes of messages and board items held.",
           e.bytes_stored);
  w.Metric("rhizome_relay_queues", "gauge", "Mailboxes held.", e.queues);
  w.Metric("rhizome_relay_boards", "gauge", "Group boards held.", e.boards);

  w.Header("rhizome_relay_rejections_total", "counter",
           "Commands refused, by reason (protocol RelayErrorCode).");
  constexpr std::size_t kSlots = std::size(RelayEngine::Stats{}.rejections);
  bool named[kSlots] = {};
  for (const auto& r : kReasons) {
    const auto index = static_cast<std::size_t>(r.code);
    if (index >= std::size(e.rejections)) continue;
    named[index] = true;
    w.Sample("rhizome_relay_rejections_total", r.label, e.rejections[index]);
  }
  std::uint64_t other = 0;
  for (std::size_t i = 0; i < std::size(e.rejections); ++i) {
    if (!named[i]) other += e.rejections[i];
  }
  w.Sample("rhizome_relay_rejections_total", "other", other);

  w.Metric("rhizome_relay_commits_total", "counter",
           "Database commits (group commit: each holds the writes of many commands).", s.commits);
  w.Metric("rhizome_relay_commit_failures_total", "counter",
           "Commits that failed (every connection was then closed).", s.commit_failures);
  return w.Take();
}

MetricsRoute RouteMetricsRequest(std::string_view received) {
  // The header block ends at the first blank line (CRLF or bare LF endings).
  const std::size_t end = std::min(received.find("\r\n\r\n"), received.find("\n\n"));
  if (end == std::string_view::npos) {
    return received.size() >= kMaxMetricsRequestBytes ? MetricsRoute::kBadRequest
                                                      : MetricsRoute::kIncomplete;
  }
  if (end > kMaxMetricsRequestBytes) return MetricsRoute::kBadRequest;
  std::string_view line = received.substr(0, received.find('\n'));
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  // METHOD SP TARGET SP VERSION, nothing else.
  const auto sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return MetricsRoute::kBadRequest;
  const auto sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return MetricsRoute::kBadRequest;
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (version.size() != 8 || !StartsWith(version, "HTTP/1.") || version[7] < '0' ||
      version[7] > '9') {
    return MetricsRoute::kBadRequest;
  }
  if (method != "GET" || target.empty() || target.front() != '/') return MetricsRoute::kBadRequest;
  for (char c : target) {
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
      return MetricsRoute::kBadRequest;
    }
  }
  if (target == "/metrics" || StartsWith(target, "/metrics?")) return MetricsRoute::kMetrics;
  return MetricsRoute::kNotFound;
}

std::string MetricsHttpResponse(MetricsRoute route, std::string_view metrics_body) {
  const char* status = "400 Bad Request";
  const char* type = "text/plain; charset=utf-8";
  std::string_view body = "bad request\n";
  switch (route) {
    case MetricsRoute::kMetrics:
      status = "200 OK";
      type = "text/plain; version=0.0.4; charset=utf-8";
      body = metrics_body;
      break;
    case MetricsRoute::kNotFound:
      status = "404 Not Found";
      body = "not found: the metrics are at /metrics\n";
      break;
    case MetricsRoute::kIncomplete:
    case MetricsRoute::kBadRequest:
      break;
  }
  std::string out = "HTTP/1.0 ";
  out += status;
  out += "\r\nContent-Type: ";
  out += type;
  out += "\r\nContent-Length: ";
  out += std::to_string(body.size());
  out += "\r\nConnection: close\r\n\r\n";
  out += body;
  return out;
}

}  // namespace rhizome::relay
