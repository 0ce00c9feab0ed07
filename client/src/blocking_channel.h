// What RelayLink and PeerLink share: a secure channel on a private event loop
// that runs only inside the link's calls (client/src/relay_link.cc,
// client/src/peer_link.cc). Internal: carries Asio types.
#pragma once

#include <asio.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "rhizome/crypto/result.h"
#include "rhizome/net/channel.h"
#include "rhizome/protocol/secure_session.h"

namespace rhizome::client::internal {

// Runs `io` until done() or the deadline passes; returns done(). Returns early
// (with done()) when nothing is left to run.
bool RunUntil(asio::io_context& io, const std::function<bool()>& done,
              std::chrono::milliseconds deadline);

// Connects to host:port and runs the handshake as initiator on `io`, within
// `deadline` (the channel's own handshake timeout lies a second beyond it, so
// this deadline decides). nullopt: the deadline passed first (what is still
// pending goes with `io`). `config` need not outlive the call.
std::optional<Result<std::shared_ptr<net::Channel>>> ConnectWithin(
    asio::io_context& io, const std::string& host, std::uint16_t port,
    const protocol::SecureSessionConfig& config, std::chrono::milliseconds deadline);

}  // namespace rhizome::client::internal
