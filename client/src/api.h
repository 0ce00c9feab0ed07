// The local API (client/proto/rhizome/api/v1/api.proto, docs/api.md): parsing
// one request line, running a request against a Messenger, formatting one
// response line. Shared by the daemon (requests from its socket) and the
// command line (the same requests, in process when no daemon runs), so both
// offer exactly the same operations.
//
// Limits: a request line is at most kMaxApiLineBytes (checked before parsing).
// Errors in responses carry a code and a fixed sentence, never input data.
// Thread safety: pure functions; Execute uses the Messenger (one thread).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "rhizome/api/v1/api.pb.h"
#include "rhizome/client/messenger.h"
#include "rhizome/crypto/result.h"

namespace rhizome::client::api {

namespace v1 = ::rhizome::api::v1;

// Largest request or response line, without its '\n'.
inline constexpr std::size_t kMaxApiLineBytes = 64 * 1024;
// Defaults applied when a request leaves a field at zero.
inline constexpr std::uint32_t kDefaultSyncSeconds = 30;
inline constexpr std::uint32_t kMaxSyncSeconds = 3600;

// JSON (protobuf mapping) -> Request. Unknown fields are refused.
// Errors: kLimitExceeded "request is too large"; kMalformed "request is not
// valid JSON for rhizome.api.v1.Request"; kInvalidArgument "request has no
// command".
Result<v1::Request> ParseRequest(std::string_view line);

// One line of JSON, without '\n'.
std::string FormatResponse(const v1::Response& response);

// Overwrites a request or response line (message texts, names) before its
// memory is freed, then empties it. Copies a growing std::string left behind
// are not reached: best effort, like every wipe of heap text.
void WipeLine(std::string& line) noexcept;
// Response line -> Response (the command line reading the daemon).
// Errors: kLimitExceeded, kMalformed.
Result<v1::Response> ParseResponse(std::string_view line);

v1::Response ErrorResponse(std::uint64_t id, const Error& error);
// The Errc that an error code string names (kIo for unknown strings).
Errc ErrcFromCode(std::string_view code);

// Runs one request. Subscribe is the daemon's business: here it fails with
// kInvalidArgument "subscribe needs the daemon".
v1::Response Execute(Messenger& messenger, const v1::Request& request);

cli::v1::Message ToProto(const MessageInfo& m);
cli::v1::Contact ToProto(const ContactInfo& c);

}  // namespace rhizome::client::api
