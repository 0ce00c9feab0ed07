// RelayEngine: the relay's sans-IO core (DESIGN §9, issue 4).
//
// It owns the relay's state (mailboxes, boards, per-connection state) through
// a RelayStore and turns relay commands into replies. No sockets, no threads,
// no clock of its own: the Asio shell (relay/src/server.*) feeds it
// connections, parsed commands and the current time, and writes the replies
// it returns.
//
// Durability contract (DESIGN §9/§11): a command that changes stored state is
// staged in an open store transaction; its reply is *held* until Flush()
// commits that transaction (and, with Durability::kFsyncByCaller, until the
// caller's SyncToDisk() after it), so nothing is acknowledged before a
// durable commit. The shell calls Flush() at most once per event-loop turn,
// which batches the commits of every command staged since the last one.
// Replies to commands that change nothing (and refusals) are released by the
// same Flush(), in arrival order per connection. Pushes to subscribers are
// deliveries, not acknowledgements: TakeEarly() hands them out before the
// commit.
//
// Privacy: the engine never logs and never stores anything about connections
// (no IPs, no handshake hashes) beyond their lifetime in memory. Stored
// arrival times are rounded (RelayLimits::arrival_rounding_seconds).
//
// Authorization (docs/protocol/relay-commands.md): every command is bound to
// the connection's handshake hash and a correlation id that must not repeat on
// that connection; recipient commands carry an Ed25519 signature, SEND and
// board writes/reads a keyed BLAKE2b MAC, compared in constant time. A
// nonexistent id and a failed authorization get the same answer (kAuth).
// Protocol state changes only after authorization succeeds.
//
// Thread safety: not thread-safe; one engine is driven from one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <vector>

#include "rhizome/crypto/bytes.h"
#include "rhizome/crypto/result.h"
#include "rhizome/protocol/relay_messages.h"

namespace rhizome::crypto {
class RandomSource;
}

namespace rhizome::relay {

// Every limit the relay enforces, with its default. All configurable
// (rhizome-relay --config); documented in docs/relay.md.
struct RelayLimits {
  std::uint32_t message_ttl_seconds = 21u * 24u * 3600u;  // DESIGN §9 default
  std::uint32_t arrival_rounding_seconds = 60;            // stored times are floor(t / r) * r
  std::uint32_t max_messages_per_queue = 10'000;
  std::uint64_t max_bytes_per_queue = 64ull << 20;
  std::uint32_t max_items_per_board = 100'000;
  std::uint64_t max_bytes_per_board = 256ull << 20;
  std::uint32_t max_board_ttl_seconds = 90u * 24u * 3600u;  // a client's ttl is capped to this
  std::uint64_t max_queues = 1'000'000;
  std::uint64_t max_boards = 100'000;
  std::uint64_t max_total_bytes = 4ull << 30;  // everything stored
  // Per connection.
  // Older ones are forgotten FIFO. 24 bytes each per connection that sent
  // that many commands: 6 KiB, so 10,000 busy connections fit a small VPS.
  std::uint32_t max_corr_ids_remembered = 256;
  std::uint32_t max_subscriptions_per_connection = 1024;
  std::uint32_t max_queues_created_per_connection = 256;
  // Token bucket: commands per second, and burst.
  std::uint32_t commands_per_second = 2000;
  std::uint32_t command_burst = 4000;
};

using ConnectionId = std::uint64_t;

// How commits reach the disk.
// - kFsync: every Flush() commit fsyncs the WAL before it returns (SQLite's
//   synchronous=FULL), so its replies may go out at once.
// - kFsyncByCaller: the one the relay binary uses. A commit writes the WAL
//   without fsyncing it (synchronous=NORMAL; checkpoints still sync); the
//   caller must not send any reply of a Flush() before a SyncToDisk() that
//   started after the last commit so far has finished, even if that Flush()
//   itself committed nothing (its replies may rest on an earlier commit: an
//   ALREADY_SET after a KEY). One SyncToDisk() covers every commit that
//   returned before it started, so a separate thread can sync while the
//   network thread goes on (group commit; docs/relay-internals.md). An
//   acknowledged message survives a power loss, as with kFsync. A failed
//   SyncToDisk() fails every later one too.
// - kNoFsync (synchronous=OFF) is for the fuzz target, where one fsync per
//   command makes the search hundreds of times slower: commits still survive
//   the process dying, only not the machine.
enum class Durability : std::uint8_t { kFsync, kNoFsync, kFsyncByCaller };

// What pending_reply_bytes() counts per reply on top of its blobs.
inline constexpr std::size_t kReplyOverheadBytes = 128;

// A reply to deliver on a connection.
struct Outgoing {
  ConnectionId connection = 0;
  protocol::RelayReply reply;
};

class RelayEngine {
 public:
  // Opens (creating if needed) the relay's store in `data_dir` (its own small
  // database; never the client's profile code). The engine keeps a reference
  // to `rng` (new ids): it must outlive the engine.
  // Errors: kIo / kCorrupt / kUnsupported from the store.
  static Result<std::unique_ptr<RelayEngine>> Open(const std::filesystem::path& data_dir,
                                                   const RelayLimits& limits,
                                                   crypto::RandomSource& rng,
                                                   Durability durability = Durability::kFsync);
  virtual ~RelayEngine() = default;

  // A channel finished its handshake with hash `handshake_hash`. If a key
  // statement is set, it is queued for this connection first (released by the
  // next Flush(), before any reply).
  virtual ConnectionId OnConnect(ByteSpan handshake_hash) = 0;
  // The relay's latest key statement (protocol/relay_key_statement.h), pushed
  // without a corr id to every connection after its handshake so clients that
  // hold an older address follow the rotation (DESIGN §9). Sent after every
  // handshake, not only those made with the previous key: a client that pasted
  // the new address learns the serial too. The caller has verified it (the
  // relay loads it from relay.keys, which checks it). Replaces an earlier one.
  virtual void SetKeyStatement(protocol::RelayKeyStatement statement) = 0;
  // The connection is gone: its subscriptions end, unacknowledged deliveries
  // stay stored (redelivered on the next SUB/GET).
  virtual void OnDisconnect(ConnectionId connection) = 0;

  // One command from `connection` at Unix time `now`. Its effects are staged;
  // its reply comes out of the next Flush(), its pushes to subscribers out of
  // TakeEarly() or the next Flush().
  virtual void OnCommand(ConnectionId connection, protocol::RelayCommand command,
                         std::uint64_t now) = 0;

  // Commits everything staged since the last Flush() in one durable
  // transaction, then returns the replies and pushes to send, in order.
  // Errors: kIo if the commit fails. The staged writes are then rolled back,
  // nothing is returned, and the shell closes every connection; clients retry
  // whatever was not acknowledged (nothing acknowledged is ever lost).
  virtual Result<std::vector<Outgoing>> Flush(std::uint64_t now) = 0;
  // The pushes (QueueMessage without a corr id) and key statements staged
  // since the last Flush(), which the shell may send before the commit:
  // a push is a delivery, not an acknowledgement, so it need not wait for
  // the fsync (docs/relay-internals.md, "Pushes before the commit"). What is
  // not taken comes out of the next Flush(), before the replies. If that
  // commit fails, a message already pushed was never acknowledged to its
  // sender, who sends it again: the recipient may see it twice (it already
  // drops duplicates: a relay crash between commit and reply does the same).
  virtual std::vector<Outgoing> TakeEarly() = 0;
  // Makes every commit that returned before this call durable (fdatasync of
  // the WAL). Thread-safe: may run on another thread while the engine is in
  // use. A no-op for kFsync and kNoFsync. Errors: kIo "cannot sync the relay
  // database to disk"; after one, nothing committed since the last success
  // may be acknowledged, and the relay must stop (the WAL may have lost a
  // frame that later ones depend on).
  virtual Status SyncToDisk() = 0;
  // About how many bytes the replies staged since the last Flush() take
  // (blobs plus kReplyOverheadBytes each): the shell bounds how long it lets
  // them accumulate.
  virtual std::size_t pending_reply_bytes() const = 0;
  // True while commands since the last Flush() have staged writes for it to
  // commit; false for a turn of reads and refusals only, and after a store
  // error (that Flush() fails, and the sooner the better). The shell lets
  // only such turns wait for its commit interval.
  virtual bool has_staged_writes() const = 0;

  // Deletes expired messages and board items (call periodically, off the hot
  // path). Returns how many were removed.
  virtual Result<std::uint64_t> Expire(std::uint64_t now) = 0;

  // Counters for the metrics endpoint.
  struct Stats {
    std::uint64_t connections = 0;
    std::uint64_t queues = 0;
    std::uint64_t boards = 0;
    std::uint64_t messages_stored = 0;     // total accepted SENDs
    std::uint64_t messages_delivered = 0;  // pushed or returned by GET
    std::uint64_t messages_expired = 0;
    std::uint64_t bytes_stored = 0;        // currently held
    std::uint64_t commits = 0;             // Flush() calls that committed
    std::uint64_t rejections[16] = {};     // by protocol::RelayErrorCode
  };
  virtual Stats stats() const = 0;
};

}  // namespace rhizome::relay
