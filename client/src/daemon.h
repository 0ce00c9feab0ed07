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
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

#include "api.h"
#include "rhizome/crypto/result.h"
#include "rhizome/storage/profile.h"

namespace rhizome::client {

inline constexpr std::size_t kMaxApiConnections = 16;
inline constexpr std::size_t kMaxQueuedRequests = 256;
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
};

std::filesystem::path SocketPath(const std::filesystem::path& profile_dir);

// Runs until SIGTERM or SIGINT; prints "daemon: listening on <socket>" once the
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
