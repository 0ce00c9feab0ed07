// The relay's Asio shell: accepts TCP connections, runs the NKpsk0 secure
// channel (net::Channel), parses transport messages, feeds relay commands to
// the RelayEngine and writes its replies. Commits are batched (DESIGN §9):
// every command that arrives in one event-loop turn is staged, then one
// Flush() commits them together; a sync thread fsyncs the WAL and the replies
// go out after it. While a sync runs, later turns keep staging into the open
// transaction, committed when it ends (group commit: one commit and one fsync
// per sync period). Pushes to subscribers go out as soon as they are staged.
//
// Hostile clients: the channel enforces the handshake, idle and write
// deadlines; a connection that sends a malformed transport message, a
// non-command message, or outruns its write queue is closed; at most
// max_connections are served at once (others are closed on accept).
// Metrics (optional): a minimal HTTP/1.0 responder for GET /metrics on a
// loopback address only (metrics.h), on the same io_context; aggregate counts
// only.
// Logs (log.h): nothing about clients (no IPs, no ids) at any level.
// Thread safety: everything runs on the one io_context thread, except the
// sync thread, which only calls RelayEngine::SyncToDisk() and posts its
// completion back to the io_context.
#pragma once

#include <asio.hpp>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "metrics.h"
#include "relay_keys.h"
#include "rhizome/net/channel.h"
#include "rhizome/relay/engine.h"

namespace rhizome::relay {

// Group commit: at most this many commands are staged in one transaction
// while the previous commit's sync runs (then the server commits anyway).
inline constexpr std::size_t kMaxCommandsPerCommit = 4096;
// If more than that many transactions were committed while one sync is still running
// (a disk slower than the clients), the network thread syncs itself, so the
// replies held for syncs stay bounded (about kMaxUnsyncedCommits + 1 times
// kMaxCommandsPerCommit replies).
inline constexpr std::uint64_t kMaxUnsyncedCommits = 4;
// A transaction is also committed (not left open for the running sync) once
// its replies take about this many bytes (RelayEngine::pending_reply_bytes:
// GET and board reads carry blobs), so at most about
// (kMaxUnsyncedCommits + 1) x 4 MiB of replies wait for syncs.
inline constexpr std::size_t kMaxPendingReplyBytes = 4u << 20;

// A turn's first pushes are written to their sockets as soon as their
// command is staged; after that (a long turn: the relay is busy) they are
// queued, and at the turn's end written before the commit; either way one
// write per connection (net::Channel::Cork). Counted in pushes,
// not commands: the ACKs that arrive ahead of a burst of SENDs must not use
// up the budget. Measured at 1,000 connections: sending every push at once
// cost 10-25% more CPU per message at the maximal rate; sending none before
// the turn's end added ~50 us to the p50 latency at 5,000 msg/s
// (docs/benchmarks.md).
inline constexpr std::size_t kImmediatePushes = 8;

struct ServerOptions {
  std::string listen_host = "127.0.0.1";
  std::uint16_t listen_port = 0;  // 0 = pick a free port
  net::ChannelLimits channel;
  std::size_t max_connections = 20'000;
  std::chrono::seconds expire_every{60};
  // Group commit: a commit follows the previous one by at least this long.
  // Only a turn with staged writes waits (its replies, and those of later
  // commands on any connection, wait with it); reads and refusals alone do
  // not. 0: commit as soon as the previous sync ended. See "Commit interval"
  // in docs/relay-internals.md; config.cc caps it below the checkpointer's
  // kCheckpointBusyTimeoutMs, which waits for this transaction.
  std::chrono::microseconds commit_interval{2000};
  // The metrics endpoint: empty host = off. The host must be a loopback IP
  // address (config.h validates it; Start() refuses anything else).
  std::string metrics_host;
  std::uint16_t metrics_port = 0;  // 0 = pick a free port
};

class RelayServer {
 public:
  RelayServer(asio::io_context& io, RelayEngine& engine, const RelayKeys& keys,
              ServerOptions options);
  ~RelayServer();

  // Binds and starts accepting (and serving metrics, if configured).
  // Errors: kInvalidArgument "the listen address is not an IP address" /
  // "the metrics address must be a loopback IP address"; kIo "cannot listen
  // on the address" / "cannot listen on the metrics address".
  Status Start();
  // Stops accepting, commits and syncs what is staged, queues the replies,
  // closes every connection (most of those replies are not delivered).
  void Stop();
  std::uint16_t port() const;
  std::size_t connection_count() const { return channels_.size(); }
  // The metrics port actually bound (0 when metrics are off).
  std::uint16_t metrics_port() const;
  // The shell's counters (metrics.h); connections_open is filled in.
  ServerCounters counters() const;
  // True once a sync of the database failed: the server stopped serving and
  // the process should exit with an error (engine.h SyncToDisk).
  bool failed() const { return failed_; }

 private:
  asio::awaitable<void> AcceptLoop();
  asio::awaitable<void> Serve(asio::ip::tcp::socket socket);
  // Runs the NKpsk0 handshake; nullptr when it fails.
  asio::awaitable<std::shared_ptr<net::Channel>> Handshake(asio::ip::tcp::socket socket);
  // Feeds one received message to the engine. False: close the connection.
  bool HandleMessage(ConnectionId id, ByteSpan frame);
  // The channel of an established connection closed.
  void OnClosed(ConnectionId id);
  // Accepted and not yet closed: handshaking or established.
  std::size_t LiveConnections() const { return *handshaking_ + channels_.size(); }
  asio::awaitable<void> ExpireLoop();
  asio::awaitable<void> MetricsAcceptLoop();
  asio::awaitable<void> ServeMetrics(asio::ip::tcp::socket socket);
  void ScheduleFlush();
  void FlushNow(bool force = false);
  // Wakes FlushNow() at `due` (the commit interval's end) unless armed.
  void ArmCommitTimer(std::chrono::steady_clock::time_point due);
  // Serializes and sends; closes a connection whose send queue is full.
  // kEndOfTurn: each channel writes once after this handler (posted);
  // kNow: written before Send returns, one write per channel (corked), unless
  // a write is already pending on that channel (then the frames join it).
  enum class SendMode : std::uint8_t { kEndOfTurn, kNow };
  void Send(std::vector<Outgoing> out, SendMode mode = SendMode::kEndOfTurn);
  // Group commit (Durability::kFsyncByCaller, engine.h): the replies of a
  // turn that committed wait in held_ until the sync thread has run
  // SyncToDisk() after that commit; the network thread goes on meanwhile.
  void RequestSync(std::uint64_t generation);
  void SyncLoop(std::weak_ptr<int> server_alive);
  void OnSynced(std::uint64_t generation, bool ok);
  // The newest commit is not known to be synced yet.
  bool SyncInFlight() const { return synced_generation_ < generation_; }
  void StopSyncThread();
  // A sync failed: nothing more may be acknowledged (engine.h SyncToDisk).
  void FailStop();
  // Logs it, drops the held replies and remembers it (failed()).
  void MarkSyncFailed();

  asio::io_context& io_;
  RelayEngine& engine_;
  const RelayKeys& keys_;
  ServerOptions options_;
  asio::ip::tcp::acceptor acceptor_;
  // Established connections. A channel leaves this map when it closes (or
  // right before the server closes it), so every channel holding this
  // server's callbacks is either here or closed: Stop() closes all of them.
  std::unordered_map<ConnectionId, std::shared_ptr<net::Channel>> channels_;
  // Accepted connections still in their handshake (shared with Serve()'s
  // guard, which may outlive the server at io_context teardown).
  std::shared_ptr<std::size_t> handshaking_ = std::make_shared<std::size_t>(0);
  // Expires with the server: the channels' close callbacks, which may run
  // after it is gone (at exit), check it before using `this`.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
  bool flush_scheduled_ = false;
  bool stopping_ = false;
  bool failed_ = false;
  // Replies held for the sync of `generation` (turns that committed nothing
  // queue behind them, so each connection's replies keep their order).
  struct Held {
    std::uint64_t generation = 0;
    std::vector<Outgoing> out;
  };
  std::deque<Held> held_;
  // Syncs asked of the sync thread: one per commit, and one per expiry pass
  // (which may have retired a journal file that waits for a sync).
  std::uint64_t generation_ = 0;
  std::uint64_t synced_generation_ = 0;  // the newest one known synced
  bool flush_deferred_ = false;   // commands wait for that sync or the commit timer
  std::thread sync_thread_;
  std::mutex sync_mu_;  // guards the three below
  std::condition_variable sync_cv_;
  std::uint64_t sync_requested_ = 0;
  bool sync_stop_ = false;
  asio::steady_timer expire_timer_;
  asio::steady_timer commit_timer_;
  bool commit_timer_armed_ = false;
  // min(), not the clock's epoch: steady_clock counts from boot, and a relay
  // started within one interval of boot must not hold its first commit.
  std::chrono::steady_clock::time_point last_commit_ = std::chrono::steady_clock::time_point::min();
  ServerCounters counters_;
  std::size_t commands_since_flush_ = 0;  // staged since the last commit
  std::size_t pushes_this_turn_ = 0;      // sent at once since the last FlushNow()
  std::vector<std::shared_ptr<net::Channel>> corked_;  // Send(kNow) scratch
  Bytes wire_;  // Send(): each reply is serialized here, sealed by its channel, wiped
  asio::ip::tcp::acceptor metrics_acceptor_;
  // Shared with each metrics coroutine, which decrements it when it ends even
  // if that happens after the server is gone (io_context teardown).
  std::shared_ptr<std::size_t> metrics_connections_ = std::make_shared<std::size_t>(0);
};

}  // namespace rhizome::relay
