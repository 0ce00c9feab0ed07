// The relay's settings and its configuration file (rhizome-relay --config).
//
// RelaySettings holds everything an operator can set: the server options
// (listen address, public host, connection cap, channel deadlines, metrics
// address, log level, expiry and commit intervals) and every RelayLimits field. The file is
// protobuf text format of rhizome.relay.v1.RelayConfig
// (relay/proto/rhizome/relay/v1/config.proto); docs/relay.md is the reference
// and relay/deploy/rhizome-relay.conf a commented example.
//
// Order of precedence: defaults (below), then the file, then command-line
// flags; ValidateRelaySettings() checks the result before the relay starts.
//
// Invariants: a file larger than kMaxRelayConfigBytes is refused before it is
// parsed; unknown fields, a field given twice and values outside their range
// are errors; on any error the settings passed in are left unchanged.
// Error messages (Error::message) are static; ConfigProblem carries the
// details for the operator (line, column, the parser's text or the field name
// and its allowed range). The file is the operator's, not a peer's, so echoing
// it back is fine; no secret is ever configured here (keys live in relay.keys).
//
// Thread safety: plain functions over values; no shared state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "log.h"
#include "rhizome/crypto/result.h"
#include "rhizome/relay/engine.h"

namespace rhizome::relay {

// A configuration file is at most this long (checked before parsing).
inline constexpr std::size_t kMaxRelayConfigBytes = 64 * 1024;
// The smallest write queue that still holds one full frame with room to spare.
inline constexpr std::uint64_t kMinWriteQueueBytes = 128 * 1024;

struct RelaySettings {
  std::string data_dir;                    // empty: not given (--data is required)
  std::string listen = "0.0.0.0:7750";     // HOST:PORT, HOST an IP address
  std::string public_host;                 // empty: the listen host
  std::uint64_t max_connections = 20'000;  // accepted at once, handshaking or not
  // The secure channel (net::ChannelLimits).
  std::uint32_t handshake_timeout_ms = 10'000;
  std::uint32_t idle_timeout_ms = 120'000;
  std::uint32_t write_timeout_ms = 30'000;
  std::uint64_t max_write_queue_bytes = 1u << 20;
  std::string metrics_listen;  // empty: no metrics endpoint; else loopback HOST:PORT
  LogLevel log_level = LogLevel::kInfo;
  std::uint32_t expire_interval_seconds = 60;
  std::uint32_t commit_interval_us = 2000;  // ServerOptions::commit_interval
  RelayLimits limits;
};

// Where and why a configuration was refused.
struct ConfigProblem {
  int line = 0;        // 1-based line in the file; 0 when the problem has no line
  int column = 0;      // 1-based; 0 when unknown
  std::string detail;  // for the operator: the parser's message, or "FIELD must be ..."
};

// Parses `text` as a RelayConfig and applies every field it sets onto
// `settings`, then validates the result (as ValidateRelaySettings does).
// `problem` may be null.
// Errors (settings unchanged): kLimitExceeded "the config file is too large"
// (more than kMaxRelayConfigBytes); kMalformed "the config file does not parse"
// (syntax, unknown field, repeated field, number out of its type's range);
// kInvalidArgument "a config value is out of range" / "a config value is not
// valid" (problem->detail names the field).
Status ApplyRelayConfigText(std::string_view text, RelaySettings& settings, ConfigProblem* problem);

// Reads `path` (refusing more than kMaxRelayConfigBytes without reading it all)
// and applies it as ApplyRelayConfigText does.
// Errors: kIo "cannot read the config file", and those of ApplyRelayConfigText.
Status ApplyRelayConfigFile(const std::filesystem::path& path, RelaySettings& settings,
                            ConfigProblem* problem);

// Checks every setting: numbers within their documented ranges (docs/relay.md),
// listen a HOST:PORT with an IP host, metrics_listen empty or a loopback
// HOST:PORT, text fields printable ASCII of bounded length.
// Errors: kInvalidArgument as above; problem->detail names the field.
Status ValidateRelaySettings(const RelaySettings& settings, ConfigProblem* problem);

// Splits "HOST:PORT" or "[V6]:PORT" (PORT 0..65535, HOST non-empty).
bool SplitHostPort(std::string_view text, std::string& host, std::uint16_t& port);
// True for a numeric IPv4 address in 127.0.0.0/8 or the IPv6 address ::1.
// SECURITY: names (e.g. "localhost") are refused: they could resolve elsewhere.
bool IsLoopbackAddress(std::string_view host);
// True for a numeric IPv4 or IPv6 address.
bool IsIpAddress(std::string_view host);

}  // namespace rhizome::relay
