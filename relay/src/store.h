// RelayStore: the relay's own small database (private to the relay module).
//
// One SQLite file, `relay.db`, in the relay's data directory, opened with
// SQLCipher's library (never libsqlite3: binaries that also link the client's
// storage would get two copies of the same symbols) and left unkeyed: it holds
// only sealed blobs and capabilities (queue and board keys), no identities,
// no names, no IP addresses, nothing about connections.
// docs/relay-internals.md describes the schema and the durability choices.
//
// Transactions: the engine opens a write transaction (Begin) at the first
// change after a commit, stages every change until the shell's next Flush (one
// or many event-loop turns: group commit) and commits once (Commit). Reads run
// inside the open transaction if there is one (they see the staged changes),
// otherwise in autocommit mode. After any error inside a transaction the
// caller calls Rollback() before anything else (the engine does: a failed
// turn answers nothing more and its Flush rolls back): SQLite may have ended
// the transaction itself.
// The message journal (message_journal.h, docs/relay-internals.md): messages
// inserted inside a transaction are held in memory and appended to a journal
// file (messages-<n>.journal, next to relay.db) at Commit, not inserted into
// SQLite; a message acknowledged while held costs a deletion record, or
// nothing if it was never journaled. When the journal file has grown past
// kJournalRotateBytes or kJournalMaxAge, or the held messages past
// kMaxStagedMessageBytes, every held message moves into SQLite and the next
// batch starts a new file; the old one is removed once that commit is
// durable. Open() moves whatever journal files hold into SQLite.
// Durability: WAL; synchronous=FULL (every Commit fsynced, the journal too,
// before it returns), or with Durability::kFsyncByCaller (the relay binary)
// NORMAL plus SyncWal() from the caller's sync thread, which syncs the
// journal and the WAL. Automatic checkpoints are off on this connection; a
// background thread with its own connection checkpoints when the WAL has
// grown, so the slow database-file writes and fsyncs stay off the caller's
// thread.
//
// Invariants kept by this class (not by triggers), as its methods report them
// (inside a transaction the table columns omit messages still staged in
// memory): queues.msg_count/msg_bytes and boards.item_count/item_bytes equal
// the count and total blob size of their messages/board items. Message
// sequence numbers are chosen by the caller and must grow (the caller takes
// them above LoadTotals().max_message_seq; InsertMessage refuses others).
//
// Errors: every method may return kIo (disk, lock), kCorrupt (damaged file),
// kInternal (SQL misuse, out of memory); messages are static and never quote
// SQL or data.
// Thread safety: one thread drives a RelayStore; the checkpoint thread is
// internal and touches only its own connection.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "rhizome/crypto/bytes.h"
#include "rhizome/crypto/result.h"
#include "rhizome/relay/engine.h"  // Durability
#include "rhizome/protocol/wire_types.h"

namespace rhizome::relay {

// The database file inside the data directory.
inline constexpr std::string_view kStoreFileName = "relay.db";
// PRAGMA user_version of the schema this build writes; a newer file is refused,
// an older one upgraded (1 -> 2: the journal_state table).
inline constexpr std::int64_t kStoreSchemaVersion = 2;
// WAL size (pages) above which the checkpoint thread is woken.
inline constexpr int kCheckpointWalPages = 2048;
// The WAL file is truncated to this size after a checkpoint resets it.
inline constexpr std::int64_t kWalSizeLimitBytes = 16ll << 20;
// Messages held in memory (journaled or pending, see InsertMessage) move into
// SQLite once their blobs exceed this many bytes.
inline constexpr std::uint64_t kMaxStagedMessageBytes = 32ull << 20;
// A journal file is retired (its held messages moved into SQLite) at the
// first commit after it reached this size or this age: acknowledged blobs
// leave the disk with it.
inline constexpr std::uint64_t kJournalRotateBytes = 128ull << 20;
inline constexpr std::chrono::milliseconds kJournalMaxAge{5000};
// How long a statement waits for the checkpoint thread's lock.
inline constexpr int kStoreBusyTimeoutMs = 5000;
// How long the checkpointer's RESTART pass waits for the writer lock and for
// readers before it gives up for this round.
inline constexpr int kCheckpointBusyTimeoutMs = 100;

// What a recipient command (KEY, SUB, GET, DEL) needs about a queue.
struct QueueByRecipient {
  std::int64_t row = 0;
  protocol::PublicKey recipient_key{};
  bool send_key_set = false;
};

// What SEND needs about a queue. The send key itself is written to the
// caller's buffer (a StackSecret), never kept here.
struct QueueBySender {
  std::int64_t row = 0;
  protocol::Id recipient_id{};
  bool send_key_set = false;
  std::uint64_t msg_count = 0;
  std::uint64_t msg_bytes = 0;
};

struct StoredMessage {
  std::int64_t seq = 0;
  protocol::Id message_id{};
  std::uint64_t received_at = 0;
  Bytes blob;
};

// Which of a board's two keys FindBoard copies out.
enum class BoardKeyKind : std::uint8_t { kRead, kWrite };

struct BoardRecord {
  std::int64_t row = 0;
  std::uint32_t ttl_seconds = 0;
  std::uint64_t next_seq = 1;
  std::uint64_t item_count = 0;
  std::uint64_t item_bytes = 0;
  std::uint64_t expires_at = 0;
};

struct StoredBoardItem {
  std::uint64_t seq = 0;
  std::uint64_t received_at = 0;
  Bytes blob;
};

struct StoreTotals {
  std::uint64_t queues = 0;
  std::uint64_t boards = 0;
  std::uint64_t bytes = 0;           // messages + board items
  // The highest seq ever inserted into this store (also of messages since
  // deleted or rolled back), or 0; InsertMessage refuses seqs up to it.
  std::int64_t max_message_seq = 0;
};

struct ExpireCounts {
  std::uint64_t messages = 0;
  std::uint64_t board_items = 0;
  std::uint64_t boards = 0;
  std::uint64_t bytes = 0;  // blob bytes freed
};

class RelayStore {
 public:
  // Creates `data_dir` (mode 0700) if needed, opens or creates relay.db in
  // it, sets WAL + synchronous=FULL + secure_delete, creates the schema,
  // moves the messages of any journal files into SQLite (and removes the
  // files) and starts the checkpoint thread.
  // Errors: kIo (cannot create or open), kCorrupt (not a database, failed
  // quick_check), kUnsupported (schema newer than kStoreSchemaVersion, or a
  // setting did not take).
  static Result<std::unique_ptr<RelayStore>> Open(
      const std::filesystem::path& data_dir, Durability durability = Durability::kFsync);
  // Stops the checkpoint thread, rolls back an open transaction, closes.
  ~RelayStore();
  RelayStore(const RelayStore&) = delete;
  RelayStore& operator=(const RelayStore&) = delete;

  // ---- transactions --------------------------------------------------------
  bool in_transaction() const;
  // BEGIN IMMEDIATE. Precondition: !in_transaction().
  Status Begin();
  // Appends the transaction's journal batch, then COMMIT (both fsynced,
  // except with kFsyncByCaller: then SyncWal()). On error the batch is cut
  // off again and the transaction rolled back.
  Status Commit();
  // fdatasync of the journal files and the WAL (Durability::kFsyncByCaller;
  // a no-op otherwise). Thread-safe. Errors: kIo (sticky).
  Status SyncWal();
  // ROLLBACK if a transaction is open, and the held messages back to what
  // the journal file says; never fails (if the journal cannot be read back,
  // every later Begin() fails with kIo).
  void Rollback();

  // Aggregates for quotas and stats, read from the tables.
  Result<StoreTotals> LoadTotals();

  // ---- queues --------------------------------------------------------------
  Result<std::optional<QueueByRecipient>> FindQueueByRecipient(const protocol::Id& recipient_id);
  // Copies the send key (if set) into `send_key_out` (exactly 32 bytes).
  Result<std::optional<QueueBySender>> FindQueueBySender(const protocol::Id& sender_id,
                                                         MutableByteSpan send_key_out);
  // false (nothing written) if either id is already taken.
  Result<bool> InsertQueue(const protocol::Id& recipient_id, const protocol::Id& sender_id,
                           const protocol::PublicKey& recipient_key, std::uint64_t created);
  // Sets the send key if it is unset; false if it was already set.
  Result<bool> SetSendKey(std::int64_t queue_row, ByteSpan send_key);
  // Deletes the queue and all its messages. Returns the blob bytes freed.
  Result<std::uint64_t> DeleteQueue(std::int64_t queue_row);

  // ---- messages ------------------------------------------------------------
  // Inserts a message and updates the queue's counters. Inside a transaction
  // the message is held in memory and journaled at Commit() (see the top of
  // this file); every method sees it as stored meanwhile, and a DeleteMessage
  // before the commit removes it without it ever reaching a file. Outside a
  // transaction it goes straight into SQLite. Errors: as below, plus
  // kInternal "relay message sequence number does not grow" if `seq` is not above
  // every seq inserted before (LoadTotals().max_message_seq).
  Status InsertMessage(std::int64_t queue_row, std::int64_t seq, const protocol::Id& message_id,
                       std::uint64_t received_at, std::uint64_t expires_at, ByteSpan blob);
  // Unexpired messages (expires_at > now) of a queue with seq > after_seq,
  // oldest first, at most `limit`.
  Result<std::vector<StoredMessage>> MessagesAfter(std::int64_t queue_row, std::int64_t after_seq,
                                                   std::uint64_t now, std::size_t limit);
  // Deletes one message and updates the counters; returns its size, or
  // nullopt if it was not there (already acknowledged or expired). Outside a
  // transaction, a journaled message's deletion commits one of its own.
  Result<std::optional<std::uint64_t>> DeleteMessage(std::int64_t queue_row, std::int64_t seq);

  // ---- boards --------------------------------------------------------------
  // Copies the board's `kind` key into `key_out` (exactly 32 bytes).
  Result<std::optional<BoardRecord>> FindBoard(const protocol::Id& board_id, BoardKeyKind kind,
                                               MutableByteSpan key_out);
  // Constant-time comparison of both stored keys with the given ones; nullopt
  // if there is no such board.
  Result<std::optional<bool>> BoardKeysEqual(const protocol::Id& board_id, ByteSpan read_key,
                                             ByteSpan write_key);
  // false (nothing written) if the board id is taken.
  Result<bool> InsertBoard(const protocol::Id& board_id, ByteSpan read_key, ByteSpan write_key,
                           std::uint32_t ttl_seconds, std::uint64_t expires_at);
  // Appends item `board.next_seq` and updates next_seq, the counters and the
  // board's expiry (max of the old one and `board_expires_at`).
  Status InsertBoardItem(const BoardRecord& board, std::uint64_t received_at,
                         std::uint64_t expires_at, std::uint64_t board_expires_at, ByteSpan blob);
  // Unexpired items with seq > cursor, ascending, at most `limit`, stopping
  // before the item that would take the summed cost (blob size +
  // `per_item_overhead`) above `byte_budget` (at least one item is returned
  // if any exists and fits the budget on its own).
  Result<std::vector<StoredBoardItem>> BoardItemsAfter(std::int64_t board_row, std::uint64_t cursor,
                                                       std::uint64_t now, std::size_t limit,
                                                       std::size_t byte_budget,
                                                       std::size_t per_item_overhead);

  // ---- expiry --------------------------------------------------------------
  // Within the open transaction: deletes up to `max_rows` expired messages,
  // then up to `max_rows` expired board items, then up to `max_rows` expired
  // boards that hold no items, keeping the counters right.
  // Precondition: in_transaction().
  Result<ExpireCounts> ExpireBatch(std::uint64_t now, std::size_t max_rows);

  // Held messages not yet in any file (inserted in the open transaction), and
  // held messages in the journal, for stats and tests.
  std::uint64_t staged_message_count() const;
  std::uint64_t journaled_message_count() const;

  // Blocks until the checkpoint thread has run one checkpoint (tests).
  Status CheckpointForTest();
  // The descriptor SyncWal() syncs (-1 unless kFsyncByCaller), for tests.
  int wal_fd_for_test() const;
  // fdatasync calls SyncWal() made: of journal files, of the WAL.
  struct SyncCounts {
    std::uint64_t journal_files = 0;
    std::uint64_t wal = 0;
  };
  SyncCounts sync_counts_for_test() const;
  // Replaces kJournalRotateBytes and kJournalMaxAge (tests).
  void SetJournalLimitsForTest(std::uint64_t rotate_bytes, std::chrono::milliseconds max_age);

 private:
  struct Impl;
  explicit RelayStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace rhizome::relay
