// `rhizome daemon` and the command line's side of its socket (DESIGN §12, §13;
// docs/api.md).
//
// The daemon holds the profile open (so no other process can), keeps its relay
// connections, runs a delivery pass every poll interval and right after a
// request that queued something, and serves the local API on a Unix socket:
// `<profile>/profile.sock`, mode 0600, in the profile directory (0700). Each
// connection's peer must have the daemon's uid (SO_PEERCRED), else it is closed
// unanswered.
//
// Threads: the socket I/O runs on one Asio thread; the Messenger (and so the
// database) is used only by one worker thread, which takes requests in order
// and alternates them with delivery passes.
// Limits: kMaxApiConnections connections at once; request lines of at most
// api::kMaxApiLineBytes (a longer one closes the connection after an error);
// kMaxQueuedRequests waiting requests in all.
//
// Direct links (--listen): a TCP listener on the io thread. Each connection
// runs Noise_XK as responder with the profile's Noise key; the initiator must
// prove the Noise key of a contact's card (else it is dropped after message 3,
// DESIGN §5). Handshakes have their own pool (kMaxDirectHandshakes, at most
// kMaxDirectHandshakesPerAddress from one IP address) and must finish within
// kDirectHandshakeTimeout; one link per contact device (a new one replaces the
// old). Its PeerMessages go to the worker, which commits each one
// (Messenger::ReceiveDirect) before the io thread sends the PeerAck. Limits:
// kMaxDirectConnections at once; kMaxDirectInFlight unacknowledged messages
// per connection (a peer that sends more is cut off); kMaxQueuedDirect
// messages waiting for the worker in all (beyond it, a connection is closed
// and its sender posts again later).
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

#include "api.h"
#include "rhizome/crypto/result.h"
#include "rhizome/protocol/wire_types.h"
#include "rhizome/storage/profile.h"

namespace rhizome::client {

inline constexpr std::size_t kMaxApiConnections = 16;
inline constexpr std::size_t kMaxQueuedRequests = 256;
inline constexpr std::size_t kMaxDirectConnections = 64;
// Handshakes in progress are a separate, smaller pool (anyone can start one),
// and one address may hold only a few of them: a stranger holding silent
// connections cannot take the slots contacts need.
inline constexpr std::size_t kMaxDirectHandshakes = 16;
inline constexpr std::size_t kMaxDirectHandshakesPerAddress = 4;
inline constexpr std::size_t kMaxQueuedDirect = 1024;
// A direct link's handshake must finish within this (a slow or silent dialler
// holds one of kMaxDirectConnections, and delays a SIGTERM exit, at most this long).
inline constexpr std::chrono::milliseconds kDirectHandshakeTimeout{5000};
using storage::kSocketFileName;
// sun_path holds 108 bytes including the terminating NUL.
inline constexpr std::size_t kMaxSocketPathBytes = 107;

struct DaemonOptions {
  std::chrono::milliseconds poll_interval{2000};
  // A background pass is one round within this budget, so requests never
  // wait long behind it (a busy relay's backlog is taken over several passes).
  std::chrono::milliseconds sync_timeout{5000};
  // Its subscriptions stay open between rounds, so a round need not wait long
  // for pushes still on their way: the next round takes them.
  std::chrono::milliseconds push_wait{20};
  // Direct links: where to listen (port 0: any free port) and the address to
  // put in cards and --direct invites (default: the listening address).
  std::optional<protocol::DirectAddress> listen;
  std::optional<protocol::DirectAddress> advertise;
};

std::filesystem::path SocketPath(const std::filesystem::path& profile_dir);

// Runs until SIGTERM or SIGINT; prints "daemon: direct links on <host:port>"
// when listening for peers, then "daemon: listening on <socket>" once the
// socket accepts. Returns the process exit code (0 after a signal).
int RunDaemon(storage::Profile profile, const DaemonOptions& options);

// The command line's call: nullopt if no daemon serves this profile (no
// socket, or a stale one nobody listens on); else the daemon's response, or an
// error (kIo "the daemon did not answer in time", "lost the connection to the
// daemon"; kAuthenticationFailed "the daemon's socket belongs to another user").
std::optional<Result<api::v1::Response>> CallDaemon(const std::filesystem::path& profile_dir,
                                                    const api::v1::Request& request,
                                                    std::chrono::milliseconds timeout);

}  // namespace rhizome::client
