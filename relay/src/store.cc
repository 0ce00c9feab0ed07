#include "store.h"

#include "message_journal.h"
#include "rhizome/crypto/secret.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sqlcipher/sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <climits>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <system_error>
#include <thread>
#include <utility>

namespace rhizome::relay {

namespace fs = std::filesystem;

namespace {

// ---------------------------------------------------------------------------
// Errors: static messages only (never SQLite's text, which may quote data).

Error StoreError(int rc) {
  switch (rc & 0xff) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Error{Errc::kCorrupt, "relay database is damaged"};
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Error{Errc::kIo, "relay database is busy (in use by another process?)"};
    case SQLITE_FULL:
      return Error{Errc::kIo, "disk full while writing the relay database"};
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return Error{Errc::kIo, "relay database is not writable"};
    case SQLITE_CANTOPEN:
      return Error{Errc::kIo, "cannot open the relay database file"};
    case SQLITE_IOERR:
    case SQLITE_PROTOCOL:
      return Error{Errc::kIo, "I/O error on the relay database"};
    case SQLITE_NOMEM:
      return Error{Errc::kInternal, "out of memory in the relay database"};
    default:
      return Error{Errc::kInternal, "relay database error (bad SQL or misuse)"};
  }
}

constexpr Error kDamagedRow{Errc::kCorrupt, "relay database holds a damaged row"};

// Times and sizes are u64 in the engine and int64 in SQLite; values above
// INT64_MAX (only a fuzzer's clock) are clamped.
std::int64_t ToDb(std::uint64_t v) {
  return v > static_cast<std::uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<std::int64_t>(v);
}
std::uint64_t FromDb(std::int64_t v) { return v < 0 ? 0 : static_cast<std::uint64_t>(v); }

// One prepared statement, finalized on destruction.
class Stmt {
 public:
  Stmt() = default;
  ~Stmt() {
    if (stmt_ != nullptr) sqlite3_finalize(stmt_);
  }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Status Prepare(sqlite3* db, const char* sql) {
    int rc = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
    if (rc != SQLITE_OK) return StoreError(sqlite3_extended_errcode(db));
    if (stmt_ == nullptr) return Error{Errc::kInternal, "empty SQL statement"};
    return {};
  }
  sqlite3_stmt* get() const { return stmt_; }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

// One use of a prepared statement: binds, steps, and resets (clearing the
// bindings, which may point into caller memory) when it leaves scope.
class Use {
 public:
  explicit Use(const Stmt& stmt) : s_(stmt.get()) {}
  ~Use() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  Use(const Use&) = delete;
  Use& operator=(const Use&) = delete;

  Use& Int(int index, std::int64_t value) {
    if (sqlite3_bind_int64(s_, index, value) != SQLITE_OK) failed_ = true;
    return *this;
  }
  Use& U64(int index, std::uint64_t value) { return Int(index, ToDb(value)); }
  // SQLITE_STATIC: `bytes` must stay alive until this Use is destroyed.
  Use& Blob(int index, ByteSpan bytes) {
    static const std::uint8_t kEmpty = 0;
    if (bytes.size() > static_cast<std::size_t>(INT_MAX)) {
      failed_ = true;
      return *this;
    }
    const void* data = bytes.empty() ? &kEmpty : bytes.data();
    if (sqlite3_bind_blob(s_, index, data, static_cast<int>(bytes.size()), SQLITE_STATIC) !=
        SQLITE_OK) {
      failed_ = true;
    }
    return *this;
  }

  // true: a row is available; false: done.
  Result<bool> Step() {
    if (failed_) return Error{Errc::kInternal, "a statement parameter could not be bound"};
    int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return StoreError(sqlite3_extended_errcode(sqlite3_db_handle(s_)));
  }
  // Runs a statement that returns no rows.
  Status Run() {
    auto r = Step();
    if (!r) return r.error();
    return {};
  }

  std::int64_t ColInt(int col) const { return sqlite3_column_int64(s_, col); }
  std::uint64_t ColU64(int col) const { return FromDb(sqlite3_column_int64(s_, col)); }
  bool ColIsNull(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }
  ByteSpan ColBlob(int col) const {
    const void* data = sqlite3_column_blob(s_, col);  // pointer first, then size
    int size = sqlite3_column_bytes(s_, col);
    if (data == nullptr || size <= 0) return {};
    return {static_cast<const std::uint8_t*>(data), static_cast<std::size_t>(size)};
  }
  // Copies a fixed-size blob column; false if the size differs.
  template <std::size_t N>
  bool ColArray(int col, ByteArray<N>& out) const {
    ByteSpan b = ColBlob(col);
    if (b.size() != N) return false;
    std::memcpy(out.data(), b.data(), N);
    return true;
  }
  bool ColInto(int col, MutableByteSpan out) const {
    ByteSpan b = ColBlob(col);
    if (b.size() != out.size()) return false;
    std::memcpy(out.data(), b.data(), out.size());
    return true;
  }

 private:
  sqlite3_stmt* s_;
  bool failed_ = false;
};

Status Exec(sqlite3* db, const char* sql) {
  if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
    return StoreError(sqlite3_extended_errcode(db));
  }
  return {};
}

// First column of the first row of a PRAGMA, as text ("" if no row).
Result<std::string> PragmaText(sqlite3* db, const char* sql, bool* had_row = nullptr) {
  Stmt stmt;
  RHIZOME_TRY(stmt.Prepare(db, sql));
  Use use(stmt);
  auto row = use.Step();
  if (!row) return row.error();
  if (had_row != nullptr) *had_row = *row;
  if (!*row) return std::string();
  const unsigned char* text = sqlite3_column_text(stmt.get(), 0);
  std::string value;
  if (text != nullptr) {
    value.assign(reinterpret_cast<const char*>(text),
                 static_cast<std::size_t>(sqlite3_column_bytes(stmt.get(), 0)));
  }
  while (true) {
    auto more = use.Step();
    if (!more) return more.error();
    if (!*more) break;
  }
  return value;
}

Result<std::int64_t> PragmaInt(sqlite3* db, const char* sql) {
  Stmt stmt;
  RHIZOME_TRY(stmt.Prepare(db, sql));
  Use use(stmt);
  auto row = use.Step();
  if (!row) return row.error();
  if (!*row) return Error{Errc::kInternal, "query returned no row"};
  return use.ColInt(0);
}

// Busy handler of both connections: retries every 100 us for up to its
// argument's milliseconds (kStoreBusyTimeoutMs for the writer,
// kCheckpointBusyTimeoutMs for the checkpointer). The writer waits here while the checkpointer's RESTART
// pass holds the writer lock (a few milliseconds); SQLite's own busy_timeout
// sleeps 1, 2, 5, 10, ... 100 ms between tries, which would turn a 3 ms wait
// into an 8 ms one on the network thread.
int ShortBusyWait(void* limit_ms, int tries) {
  using Clock = std::chrono::steady_clock;
  thread_local Clock::time_point started;  // SQLite counts tries from 0 per wait
  const auto now = Clock::now();
  if (tries == 0) started = now;
  const auto limit = std::chrono::milliseconds(reinterpret_cast<std::intptr_t>(limit_ms));
  if (now - started >= limit) return 0;
  std::this_thread::sleep_for(std::chrono::microseconds(100));
  return 1;
}

// Owns an sqlite3 connection.
struct DbHandle {
  sqlite3* db = nullptr;
  DbHandle() = default;
  DbHandle(const DbHandle&) = delete;
  DbHandle& operator=(const DbHandle&) = delete;
  ~DbHandle() {
    // close_v2 never fails for lack of finalized statements; an open
    // transaction is rolled back by the close.
    if (db != nullptr) sqlite3_close_v2(db);
  }
};

Status OpenConnection(const fs::path& path, DbHandle& handle) {
  const int flags =
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_PRIVATECACHE;
  int rc = sqlite3_open_v2(path.c_str(), &handle.db, flags, nullptr);
  if (rc != SQLITE_OK) return StoreError(rc);
  sqlite3_extended_result_codes(handle.db, 1);
  sqlite3_busy_handler(handle.db, &ShortBusyWait,
                       reinterpret_cast<void*>(std::intptr_t{kStoreBusyTimeoutMs}));
  // SECURITY (developer-notes, Storage): this must be SQLCipher's library,
  // the one every other SQLite user in our binaries links. Plain SQLite
  // answers no row here.
  bool had_row = false;
  auto version = PragmaText(handle.db, "PRAGMA cipher_version", &had_row);
  if (!version) return version.error();
  if (!had_row || version->empty()) {
    return Error{Errc::kUnsupported, "the relay must be linked with SQLCipher's SQLite"};
  }
  return {};
}

Status ExpectInt(sqlite3* db, const char* set_sql, const char* get_sql, std::int64_t want,
                 const char* message) {
  RHIZOME_TRY(Exec(db, set_sql));
  auto got = PragmaInt(db, get_sql);
  if (!got) return got.error();
  if (*got != want) return Error{Errc::kUnsupported, message};
  return {};
}

constexpr const char* kSchemaSql = R"sql(
CREATE TABLE queues (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  recipient_id BLOB NOT NULL UNIQUE,
  sender_id BLOB NOT NULL UNIQUE,
  recipient_key BLOB NOT NULL,
  send_key BLOB,
  created INTEGER NOT NULL,
  msg_count INTEGER NOT NULL DEFAULT 0,
  msg_bytes INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE messages (
  seq INTEGER PRIMARY KEY,
  queue INTEGER NOT NULL,
  message_id BLOB NOT NULL,
  received_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  blob BLOB NOT NULL
);
CREATE INDEX messages_by_queue ON messages(queue, seq);
CREATE INDEX messages_by_expiry ON messages(expires_at);
CREATE TABLE boards (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  board_id BLOB NOT NULL UNIQUE,
  read_key BLOB NOT NULL,
  write_key BLOB NOT NULL,
  ttl INTEGER NOT NULL,
  next_seq INTEGER NOT NULL,
  item_count INTEGER NOT NULL DEFAULT 0,
  item_bytes INTEGER NOT NULL DEFAULT 0,
  expires_at INTEGER NOT NULL
);
CREATE INDEX boards_by_expiry ON boards(expires_at);
CREATE TABLE board_items (
  id INTEGER PRIMARY KEY,
  board INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  received_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  blob BLOB NOT NULL,
  UNIQUE (board, seq)
);
CREATE INDEX board_items_by_expiry ON board_items(expires_at);
)sql";

// Version 2: the message journal (docs/relay-internals.md, "Message
// journal"). Journal records of messages with seq <= migrated_through are
// void: those messages were moved into the messages table (or deleted).
constexpr const char* kSchemaV2Sql = R"sql(
CREATE TABLE journal_state (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  migrated_through INTEGER NOT NULL
);
INSERT INTO journal_state (id, migrated_through) VALUES (1, 0);
PRAGMA user_version = 2;
)sql";

// The reader's limits (message_journal.h) hold whatever the writer writes: a
// batch carries at most one transaction's pending messages (below the held
// bound, or they move into SQLite) and deletion records of held ones; a file
// stops growing at the first commit past kJournalRotateBytes.
static_assert(kMaxJournalBatchBytes >= 2 * kMaxStagedMessageBytes);
static_assert(kMaxJournalFileBytes >= kJournalRotateBytes + kMaxJournalBatchBytes);

// A journal file, open for appending (and for the sync thread's fdatasync).
struct JournalFile {
  int fd = -1;
  fs::path path;
  // A batch was written since the last SyncWal() looked (set after the write,
  // before the commit counts as done; SyncWal() clears it, then syncs).
  std::atomic<bool> unsynced{false};
  JournalFile() = default;
  JournalFile(const JournalFile&) = delete;
  JournalFile& operator=(const JournalFile&) = delete;
  ~JournalFile() {
    if (fd >= 0) ::close(fd);
  }
};

// Retries interrupted and partial writes. false: the write failed.
bool WriteAllAt(int fd, ByteSpan bytes, std::uint64_t offset) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::pwrite(fd, bytes.data() + done, bytes.size() - done,
                               static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

bool SyncFd(int fd, bool data_only) {
  int rc;
  do {
    rc = data_only ? ::fdatasync(fd) : ::fsync(fd);
  } while (rc != 0 && errno == EINTR);
  return rc == 0;
}

// Reads a whole file of at most `limit` bytes.
Result<Bytes> ReadWholeFile(const fs::path& path, std::uint64_t limit) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Error{Errc::kIo, "cannot open a relay message journal file"};
  Bytes out;
  std::uint8_t chunk[65536];
  while (true) {
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      return Error{Errc::kIo, "cannot read a relay message journal file"};
    }
    if (n == 0) break;
    if (out.size() + static_cast<std::size_t>(n) > limit) {
      ::close(fd);
      return Error{Errc::kLimitExceeded, "relay message journal file is too large"};
    }
    out.insert(out.end(), chunk, chunk + n);
  }
  ::close(fd);
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------

struct RelayStore::Impl {
  DbHandle conn;

  // Statements, prepared once at open (the hot path never parses SQL).
  Stmt begin, commit, rollback;
  Stmt count_queues, count_boards, max_seq;
  Stmt queue_by_recipient, queue_by_sender, insert_queue, set_send_key, queue_bytes,
      delete_queue_messages, delete_queue;
  Stmt insert_message, queue_add, messages_after, message_size, delete_message, queue_sub;
  Stmt board_by_id, insert_board, insert_item, board_add, items_after;
  Stmt expired_messages, expired_items, delete_item, board_sub, expired_boards, delete_board;
  Stmt get_migrated_through, set_migrated_through;

  // Messages held in memory (see "Message journal" in
  // docs/relay-internals.md): by queue row, then by seq. Each is either
  // journaled (in the current journal file, committed) or pending (inserted
  // in the open transaction; appended to the journal at Commit()). A message
  // acknowledged while pending is never written anywhere; one acknowledged
  // while journaled costs a deletion record. The rest move into SQLite
  // (MigrateAll) when the journal file is due for rotation or more than
  // kMaxStagedMessageBytes are held. SQLite's queue counter columns omit the
  // held messages.
  struct StagedMessage {
    protocol::Id message_id{};
    std::uint64_t received_at = 0;
    std::uint64_t expires_at = 0;
    Bytes blob;
    bool journaled = false;
  };
  struct StagedQueue {
    std::map<std::int64_t, StagedMessage> by_seq;
    std::uint64_t bytes = 0;
    // Messages stored in SQLite and deleted in this transaction: the queue's
    // counter columns are brought down once, at Commit(), not per ACK.
    std::uint64_t deleted_count = 0;
    std::uint64_t deleted_bytes = 0;
    bool empty() const { return by_seq.empty() && deleted_count == 0; }
  };
  std::unordered_map<std::int64_t, StagedQueue> staged;
  std::uint64_t staged_bytes = 0;    // all held messages' blobs
  std::uint64_t staged_count = 0;    // all held messages
  std::uint64_t pending_count = 0;   // held and not yet journaled
  // Every seq held, journaled or migrated since Open(), and migrated_through:
  // LoadTotals() reports it so that no seq is ever reused.
  std::int64_t max_seq_seen = 0;
  // This transaction's journal work: messages inserted (queue row, seq),
  // journaled messages deleted, queues whose SQLite counters change.
  std::vector<std::pair<std::int64_t, std::int64_t>> pending_puts, pending_dels;
  std::vector<std::int64_t> counter_queues;
  // The held set changed in this transaction (Hold, Unstage, MigrateAll,
  // DeleteQueue): Rollback() must read it back from the journal.
  bool held_changed = false;
  bool rotate_at_commit = false; // MigrateAll ran: a new journal file follows
  std::int64_t migrating_through = 0;  // the migrated_through MigrateAll wrote

  // What FindQueueBySender (every SEND) needs, served from memory after the
  // first lookup: the row, recipient id, send key and the counter columns
  // as SQLite holds them in the open transaction. Every statement that
  // changes those columns updates the entry after it succeeds (NoteCounters,
  // ForgetQueue); Rollback() clears it all, and so does reaching
  // kQueueCacheEntries. Keys are relay-made random sender ids (a lookup of
  // an unknown id caches nothing), so a plain hash of their first bytes is
  // safe from flooding.
  struct CachedQueue {
    std::int64_t row = 0;
    protocol::Id recipient_id{};
    crypto::SecretBytes send_key;  // empty while unset
    std::int64_t msg_count = 0;    // the columns as stored (clamped when read)
    std::int64_t msg_bytes = 0;
  };
  struct IdHash {
    std::size_t operator()(const protocol::Id& id) const noexcept {
      std::size_t h;
      std::memcpy(&h, id.data(), sizeof h);
      return h;
    }
  };
  static constexpr std::size_t kQueueCacheEntries = 16384;
  std::unordered_map<protocol::Id, CachedQueue, IdHash> queue_cache;
  std::unordered_map<std::int64_t, protocol::Id> queue_cache_rows;

  void NoteCounters(std::int64_t row, std::int64_t count, std::int64_t bytes) {
    auto r = queue_cache_rows.find(row);
    if (r == queue_cache_rows.end()) return;
    auto q = queue_cache.find(r->second);
    if (q == queue_cache.end()) return;
    q->second.msg_count += count;
    q->second.msg_bytes += bytes;
  }
  void ForgetQueue(std::int64_t row) {
    auto r = queue_cache_rows.find(row);
    if (r == queue_cache_rows.end()) return;
    queue_cache.erase(r->second);
    queue_cache_rows.erase(r);
  }
  void ClearQueueCache() {
    queue_cache.clear();
    queue_cache_rows.clear();
  }

  // The journal.
  Durability durability = Durability::kFsync;
  fs::path data_dir;
  int dir_fd = -1;
  std::shared_ptr<JournalFile> journal;  // null until the first batch after a rotation
  std::uint64_t journal_bytes = 0;
  std::chrono::steady_clock::time_point journal_started;
  std::uint64_t next_journal_number = 1;
  std::int64_t migrated_through = 0;  // committed
  JournalBatch batch;
  bool broken = false;  // a rollback could not restore the held messages
  std::uint64_t rotate_bytes = kJournalRotateBytes;
  std::chrono::steady_clock::duration max_age = kJournalMaxAge;
  // Files SyncWal() syncs (the current one and retired ones not yet
  // removed), and whether the directory gained a file since the last sync.
  std::mutex sync_mu;
  std::vector<std::shared_ptr<JournalFile>> files_to_sync;
  // Held for a whole SyncWal(): the server may sync on the network thread
  // while the sync thread does, and a sync must not report a commit durable
  // whose new file's directory entry the other one is still syncing.
  std::mutex sync_run_mu;
  bool dir_unsynced = false;
  // Commits done, and those SyncWal() has made durable (kFsyncByCaller).
  std::atomic<std::uint64_t> commits_done{0};
  std::atomic<std::uint64_t> synced_through{0};
  // Commits that wrote WAL frames (counted by the WAL hook, which SQLite
  // calls for exactly those), and how many of them the last WAL sync covered.
  // Starts at 1: the first SyncWal() also syncs what Open() wrote.
  std::atomic<std::uint64_t> wal_commits{1};
  std::uint64_t wal_commits_synced = 0;  // under sync_run_mu
  std::atomic<std::uint64_t> file_syncs{0};  // fdatasync calls, for tests
  std::atomic<std::uint64_t> wal_syncs{0};
  // Files whose every record is void once commit `gen` is durable.
  struct Retired {
    std::shared_ptr<JournalFile> file;
    std::uint64_t gen = 0;
  };
  std::vector<Retired> retired;

  using StagedIt = std::map<std::int64_t, StagedMessage>::iterator;
  // Removes the held message `m` of `q` and advances `m`; returns its size.
  // A journaled message also needs a deletion record (the caller's choice:
  // not when its whole queue goes).
  std::uint64_t Unstage(StagedQueue& q, StagedIt& m) {
    const std::uint64_t size = m->second.blob.size();
    if (!m->second.journaled) --pending_count;
    q.bytes -= size;
    staged_bytes -= size;
    --staged_count;
    m = q.by_seq.erase(m);
    held_changed = true;
    return size;
  }

  void Hold(std::int64_t queue_row, std::int64_t seq, StagedMessage m) {
    auto& q = staged[queue_row];
    q.bytes += m.blob.size();
    staged_bytes += m.blob.size();
    ++staged_count;
    if (!m.journaled) ++pending_count;
    max_seq_seen = std::max(max_seq_seen, seq);
    q.by_seq.emplace(seq, std::move(m));
    held_changed = true;
  }

  void DropHeld() {
    staged.clear();
    staged_bytes = 0;
    staged_count = 0;
    pending_count = 0;
    EndTransactionState();
  }

  void EndTransactionState() {
    pending_puts.clear();
    pending_dels.clear();
    counter_queues.clear();
    held_changed = false;
    rotate_at_commit = false;
  }

  // Moves every held message into SQLite inside the open transaction and
  // voids the current journal file (migrated_through = every seq seen); the
  // next batch starts a new file. On error the caller rolls back.
  Status MigrateAll() {
    // First: a failure part-way leaves queues emptied, which only a
    // reload (Rollback) repairs.
    held_changed = true;
    for (auto& [queue_row, q] : staged) {
      for (auto& [seq, m] : q.by_seq) {
        Use use(insert_message);
        use.Int(1, seq).Int(2, queue_row).Blob(3, m.message_id).U64(4, m.received_at);
        use.U64(5, m.expires_at).Blob(6, m.blob);
        RHIZOME_TRY(use.Run());
      }
      if (q.by_seq.empty()) continue;
      Use use(queue_add);
      use.Int(1, queue_row).U64(2, q.bytes).U64(3, q.by_seq.size());
      RHIZOME_TRY(use.Run());
      NoteCounters(queue_row, static_cast<std::int64_t>(q.by_seq.size()),
                   static_cast<std::int64_t>(q.bytes));
      q.by_seq.clear();
      q.bytes = 0;
    }
    std::erase_if(staged, [](const auto& entry) { return entry.second.empty(); });
    staged_bytes = 0;
    staged_count = 0;
    pending_count = 0;
    pending_puts.clear();
    pending_dels.clear();  // void with the whole file
    migrating_through = max_seq_seen;
    Use use(set_migrated_through);
    use.Int(1, migrating_through);
    RHIZOME_TRY(use.Run());
    rotate_at_commit = true;
    return {};
  }

  // Brings the SQLite counters of the queues whose stored messages were
  // deleted in this transaction down, one UPDATE per queue.
  Status ApplyCounterChanges() {
    for (std::int64_t row : counter_queues) {
      auto it = staged.find(row);
      if (it == staged.end() || it->second.deleted_count == 0) continue;
      Use use(queue_add);
      use.Int(1, row).Int(2, -static_cast<std::int64_t>(it->second.deleted_bytes));
      use.Int(3, -static_cast<std::int64_t>(it->second.deleted_count));
      RHIZOME_TRY(use.Run());
      NoteCounters(row, -static_cast<std::int64_t>(it->second.deleted_count),
                   -static_cast<std::int64_t>(it->second.deleted_bytes));
    }
    return {};
  }

  // This transaction's batch: its new messages and the deletions of
  // journaled ones.
  void BuildBatch() {
    batch.Clear();
    for (const auto& [row, seq] : pending_puts) {
      auto q = staged.find(row);
      if (q == staged.end()) continue;
      auto m = q->second.by_seq.find(seq);
      if (m == q->second.by_seq.end() || m->second.journaled) continue;
      batch.Put(JournalPut{row, seq, m->second.message_id, m->second.received_at,
                           m->second.expires_at, m->second.blob});
    }
    for (const auto& [row, seq] : pending_dels) batch.Del(row, seq);
  }

  // After a successful COMMIT: pending messages are journaled now.
  void MarkJournaled() {
    for (const auto& [row, seq] : pending_puts) {
      auto q = staged.find(row);
      if (q == staged.end()) continue;
      if (auto m = q->second.by_seq.find(seq); m != q->second.by_seq.end()) {
        m->second.journaled = true;
      }
    }
    pending_count = 0;
    ClearCounterChanges();
  }

  // The SQLite counter changes are applied (Commit) or rolled back.
  void ClearCounterChanges() {
    for (std::int64_t row : counter_queues) {
      auto it = staged.find(row);
      if (it == staged.end()) continue;
      it->second.deleted_count = 0;
      it->second.deleted_bytes = 0;
      if (it->second.empty()) staged.erase(it);
    }
    counter_queues.clear();
  }

  Result<std::shared_ptr<JournalFile>> CreateJournalFile() {
    auto file = std::make_shared<JournalFile>();
    file->path = data_dir / JournalFileName(next_journal_number);
    file->fd = ::open(file->path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (file->fd < 0) return Error{Errc::kIo, "cannot create a relay message journal file"};
    ++next_journal_number;
    return file;
  }

  // Whether the synced commits cover commit `gen`.
  bool Durable(std::uint64_t gen) const {
    if (durability != Durability::kFsyncByCaller) return true;  // Commit() synced (or never does)
    return synced_through.load(std::memory_order_acquire) >= gen;
  }

  // Removes the retired files whose records are void on disk by now.
  void RemoveRetiredFiles() {
    if (retired.empty()) return;
    std::vector<std::shared_ptr<JournalFile>> gone;
    std::erase_if(retired, [&](const Retired& r) {
      if (!Durable(r.gen)) return false;
      // A file that survives a crash is harmless: every record in it is void.
      (void)::unlink(r.file->path.c_str());
      gone.push_back(r.file);
      return true;
    });
    std::lock_guard<std::mutex> lock(sync_mu);
    std::erase_if(files_to_sync, [&](const std::shared_ptr<JournalFile>& f) {
      return std::find(gone.begin(), gone.end(), f) != gone.end();
    });
  }

  // Replays the current journal file into memory (after a rollback: the
  // held set is then exactly what the committed state says).
  Status ReloadHeld() {
    DropHeld();
    if (!journal || journal_bytes == 0) return {};
    auto data = ReadWholeFile(journal->path, kMaxJournalFileBytes);
    if (!data) return data.error();
    // Only the committed batches (a failed commit's batch was cut off).
    if (data->size() < journal_bytes) {
      return Error{Errc::kIo, "cannot read a relay message journal file"};
    }
    std::map<std::int64_t, std::pair<std::int64_t, StagedMessage>> live;
    RHIZOME_TRY(ReplayInto(ByteSpan(data->data(), journal_bytes), live));
    return HoldLive(live, /*journaled=*/true);
  }

  // Reads one journal file's records into `live` (by seq): messages above
  // migrated_through, minus their deletions.
  Status ReplayInto(ByteSpan data,
                    std::map<std::int64_t, std::pair<std::int64_t, StagedMessage>>& live) {
    auto read = ReadJournal(
        data,
        [&](const JournalPut& put) {
          max_seq_seen = std::max(max_seq_seen, put.seq);
          if (put.seq <= migrated_through) return;
          StagedMessage m;
          m.message_id = put.message_id;
          m.received_at = put.received_at;
          m.expires_at = put.expires_at;
          m.blob.assign(put.blob.begin(), put.blob.end());
          live[put.seq] = {put.queue_row, std::move(m)};
        },
        [&](std::int64_t queue_row, std::int64_t seq) {
          max_seq_seen = std::max(max_seq_seen, seq);
          if (auto it = live.find(seq); it != live.end() && it->second.first == queue_row) {
            live.erase(it);
          }
        });
    if (!read) return read.error();
    return {};
  }

  // Holds the replayed messages whose queue still exists (queue rows are
  // never reused: a message of a deleted queue is dropped).
  Status HoldLive(std::map<std::int64_t, std::pair<std::int64_t, StagedMessage>>& live,
                  bool journaled) {
    std::unordered_map<std::int64_t, bool> exists;
    for (auto& [seq, entry] : live) {
      auto [it, fresh] = exists.try_emplace(entry.first, false);
      if (fresh) {
        Use use(queue_bytes);
        use.Int(1, entry.first);
        auto row = use.Step();
        if (!row) return row.error();
        it->second = *row;
      }
      if (!it->second) continue;
      entry.second.journaled = journaled;
      Hold(entry.first, seq, std::move(entry.second));
    }
    return {};
  }

  // At Open(): moves every message the journal files hold into SQLite (one
  // transaction, synced), then removes the files. The relay then starts with
  // an empty journal and nothing held.
  Status RecoverJournal() {
    {
      Use use(get_migrated_through);
      auto row = use.Step();
      if (!row) return row.error();
      if (!*row) return Error{Errc::kCorrupt, "relay database is damaged"};
      migrated_through = use.ColInt(0);
    }
    {
      Use use(max_seq);
      auto row = use.Step();
      if (!row) return row.error();
      max_seq_seen = std::max(migrated_through, *row ? use.ColInt(0) : 0);
    }
    std::vector<std::pair<std::uint64_t, fs::path>> files;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(data_dir, ec)) {
      if (auto number = ParseJournalFileName(entry.path().filename().string())) {
        files.emplace_back(*number, entry.path());
      }
    }
    if (ec) return Error{Errc::kIo, "cannot list the relay data directory"};
    std::sort(files.begin(), files.end());
    std::map<std::int64_t, std::pair<std::int64_t, StagedMessage>> live;
    for (const auto& [number, path] : files) {
      auto data = ReadWholeFile(path, kMaxJournalFileBytes);
      if (!data) return data.error();
      RHIZOME_TRY(ReplayInto(*data, live));
      next_journal_number = std::max(next_journal_number, number + 1);
    }
    if (files.empty()) return {};
    RHIZOME_TRY(Exec(conn.db, "BEGIN IMMEDIATE"));
    Status st = HoldLive(live, /*journaled=*/false);
    if (st) st = MigrateAll();
    if (st) st = Exec(conn.db, "COMMIT");
    if (!st) {
      (void)Exec(conn.db, "ROLLBACK");
      DropHeld();
      return st;
    }
    migrated_through = migrating_through;
    EndTransactionState();
    if (wal_fd >= 0 && !SyncFd(wal_fd, true)) {
      return Error{Errc::kIo, "cannot sync the relay database to disk"};
    }
    for (const auto& [number, path] : files) {
      if (::unlink(path.c_str()) != 0) {
        return Error{Errc::kIo, "cannot remove a relay message journal file"};
      }
    }
    if (!SyncFd(dir_fd, false)) return Error{Errc::kIo, "cannot sync the relay data directory"};
    return {};
  }

  // Checkpoint thread.
  DbHandle ckpt_conn;
  std::thread ckpt_thread;
  std::mutex mu;
  std::condition_variable cv;       // wakes the thread
  std::condition_variable done_cv;  // wakes CheckpointForTest
  bool ckpt_requested = false;
  bool ckpt_stop = false;
  std::uint64_t ckpts_done = 0;
  // Set while the checkpointer's RESTART pass wants or holds the writer lock:
  // Begin() waits for it to end instead of racing it for the lock (a writer
  // that begins its next transaction right after each commit would otherwise
  // win almost every time).
  std::atomic<bool> ckpt_final{false};
  std::condition_variable final_cv;  // wakes a writer waiting in Begin()

  // kFsyncByCaller: our own descriptor of relay.db-wal, for SyncWal(). SQLite
  // never replaces the WAL file while a connection is open (a restart
  // rewrites it in place, journal_size_limit truncates it), and fdatasync
  // flushes the file whichever descriptor wrote it. -1 in the other modes.
  int wal_fd = -1;
  std::atomic<bool> sync_failed{false};  // SyncWal() failed once: it always fails

  ~Impl() {
    StopCheckpointer();
    if (wal_fd >= 0) ::close(wal_fd);
    if (dir_fd >= 0) ::close(dir_fd);
  }

  void RequestCheckpoint() {
    {
      std::lock_guard<std::mutex> lock(mu);
      ckpt_requested = true;
    }
    cv.notify_one();
  }

  void CheckpointLoop() {
    std::unique_lock<std::mutex> lock(mu);
    while (true) {
      cv.wait(lock, [this] { return ckpt_stop || ckpt_requested; });
      if (ckpt_stop) return;
      ckpt_requested = false;
      lock.unlock();
      // First PASSIVE: copies the bulk without blocking the writer. The
      // writer restarts the WAL from its beginning only if, when it begins a
      // transaction, every frame has been copied; a writer that commits every
      // turn is almost never caught up with, so PASSIVE passes alone let the
      // WAL grow without bound (measured: 150 MB at 5,000 msg/s), and every
      // pass sorts all its frames. So a RESTART pass follows: it waits for
      // the writer's current transaction (the busy handler), holds the writer
      // lock while it copies what was appended meanwhile (little: the bulk is
      // done), and leaves the WAL to be restarted by the next write. If the
      // writer does not let go within the busy timeout, it degrades to PASSIVE.
      int wal_frames = 0;
      int copied = 0;
      (void)sqlite3_wal_checkpoint_v2(ckpt_conn.db, nullptr, SQLITE_CHECKPOINT_PASSIVE, &wal_frames,
                                      &copied);
      ckpt_final.store(true, std::memory_order_release);
      (void)sqlite3_wal_checkpoint_v2(ckpt_conn.db, nullptr, SQLITE_CHECKPOINT_RESTART, &wal_frames,
                                      &copied);
      lock.lock();
      ckpt_final.store(false, std::memory_order_release);
      final_cv.notify_all();
      ++ckpts_done;
      done_cv.notify_all();
    }
  }

  void StopCheckpointer() {
    if (!ckpt_thread.joinable()) return;
    {
      std::lock_guard<std::mutex> lock(mu);
      ckpt_stop = true;
    }
    cv.notify_one();
    ckpt_thread.join();
  }

  // SQLite calls it after every commit that wrote frames to the WAL, on the
  // committing thread, before COMMIT returns.
  static int WalHook(void* arg, sqlite3*, const char*, int pages) {
    auto* im = static_cast<Impl*>(arg);
    im->wal_commits.fetch_add(1, std::memory_order_release);
    if (pages >= kCheckpointWalPages) im->RequestCheckpoint();
    return SQLITE_OK;
  }

  Status PrepareAll() {
    sqlite3* db = conn.db;
    RHIZOME_TRY(begin.Prepare(db, "BEGIN IMMEDIATE"));
    RHIZOME_TRY(commit.Prepare(db, "COMMIT"));
    RHIZOME_TRY(rollback.Prepare(db, "ROLLBACK"));
    RHIZOME_TRY(
        count_queues.Prepare(db, "SELECT count(*), coalesce(sum(msg_bytes), 0) FROM queues"));
    RHIZOME_TRY(
        count_boards.Prepare(db, "SELECT count(*), coalesce(sum(item_bytes), 0) FROM boards"));
    RHIZOME_TRY(max_seq.Prepare(db, "SELECT coalesce(max(seq), 0) FROM messages"));
    RHIZOME_TRY(queue_by_recipient.Prepare(
        db, "SELECT id, recipient_key, send_key IS NOT NULL FROM queues WHERE recipient_id = ?1"));
    RHIZOME_TRY(queue_by_sender.Prepare(db,
                                        "SELECT id, recipient_id, send_key, msg_count, msg_bytes "
                                        "FROM queues WHERE sender_id = ?1"));
    RHIZOME_TRY(insert_queue.Prepare(
        db,
        "INSERT OR IGNORE INTO queues (recipient_id, sender_id, recipient_key, created) "
        "VALUES (?1, ?2, ?3, ?4)"));
    RHIZOME_TRY(set_send_key.Prepare(
        db, "UPDATE queues SET send_key = ?2 WHERE id = ?1 AND send_key IS NULL"));
    RHIZOME_TRY(queue_bytes.Prepare(db, "SELECT msg_bytes FROM queues WHERE id = ?1"));
    RHIZOME_TRY(delete_queue_messages.Prepare(db, "DELETE FROM messages WHERE queue = ?1"));
    RHIZOME_TRY(delete_queue.Prepare(db, "DELETE FROM queues WHERE id = ?1"));
    RHIZOME_TRY(insert_message.Prepare(
        db,
        "INSERT INTO messages (seq, queue, message_id, received_at, expires_at, blob) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6)"));
    RHIZOME_TRY(queue_add.Prepare(
        db,
        "UPDATE queues SET msg_count = msg_count + ?3, msg_bytes = msg_bytes + ?2 WHERE id = ?1"));
    RHIZOME_TRY(messages_after.Prepare(
        db,
        "SELECT seq, message_id, received_at, blob FROM messages "
        "WHERE queue = ?1 AND seq > ?2 AND expires_at > ?3 ORDER BY seq LIMIT ?4"));
    RHIZOME_TRY(message_size.Prepare(
        db, "SELECT length(blob) FROM messages WHERE seq = ?1 AND queue = ?2"));
    RHIZOME_TRY(delete_message.Prepare(db, "DELETE FROM messages WHERE seq = ?1"));
    RHIZOME_TRY(queue_sub.Prepare(
        db,
        "UPDATE queues SET msg_count = msg_count - 1, msg_bytes = msg_bytes - ?2 WHERE id = ?1"));
    RHIZOME_TRY(board_by_id.Prepare(
        db,
        "SELECT id, ttl, next_seq, item_count, item_bytes, expires_at, read_key, write_key "
        "FROM boards WHERE board_id = ?1"));
    RHIZOME_TRY(insert_board.Prepare(
        db,
        "INSERT OR IGNORE INTO boards (board_id, read_key, write_key, ttl, next_seq, expires_at) "
        "VALUES (?1, ?2, ?3, ?4, 1, ?5)"));
    RHIZOME_TRY(
        insert_item.Prepare(db,
                            "INSERT INTO board_items (board, seq, received_at, expires_at, blob) "
                            "VALUES (?1, ?2, ?3, ?4, ?5)"));
    RHIZOME_TRY(board_add.Prepare(
        db,
        "UPDATE boards SET next_seq = ?2, item_count = item_count + 1, "
        "item_bytes = item_bytes + ?3, expires_at = max(expires_at, ?4) WHERE id = ?1"));
    RHIZOME_TRY(items_after.Prepare(
        db,
        "SELECT seq, received_at, blob FROM board_items "
        "WHERE board = ?1 AND seq > ?2 AND expires_at > ?3 ORDER BY seq LIMIT ?4"));
    RHIZOME_TRY(expired_messages.Prepare(
        db, "SELECT seq, queue, length(blob) FROM messages WHERE expires_at <= ?1 LIMIT ?2"));
    RHIZOME_TRY(expired_items.Prepare(
        db, "SELECT id, board, length(blob) FROM board_items WHERE expires_at <= ?1 LIMIT ?2"));
    RHIZOME_TRY(delete_item.Prepare(db, "DELETE FROM board_items WHERE id = ?1"));
    RHIZOME_TRY(board_sub.Prepare(
        db,
        "UPDATE boards SET item_count = item_count - 1, item_bytes = item_bytes - ?2 "
        "WHERE id = ?1"));
    RHIZOME_TRY(expired_boards.Prepare(
        db, "SELECT id FROM boards WHERE expires_at <= ?1 AND item_count = 0 LIMIT ?2"));
    RHIZOME_TRY(delete_board.Prepare(db, "DELETE FROM boards WHERE id = ?1"));
    RHIZOME_TRY(get_migrated_through.Prepare(
        db, "SELECT migrated_through FROM journal_state WHERE id = 1"));
    RHIZOME_TRY(set_migrated_through.Prepare(
        db, "UPDATE journal_state SET migrated_through = ?1 WHERE id = 1"));
    return {};
  }
};

RelayStore::RelayStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

RelayStore::~RelayStore() {
  if (!impl_) return;
  // Rollback first: a checkpointer waiting for the writer lock gets it at once.
  Rollback();
  impl_->StopCheckpointer();
}

namespace {

Status SetSynchronous(sqlite3* db, Durability durability) {
  if (durability == Durability::kNoFsync) {
    return ExpectInt(db, "PRAGMA synchronous = OFF", "PRAGMA synchronous", 0,
                     "synchronous=OFF could not be set");
  }
  if (durability == Durability::kFsyncByCaller) {
    // NORMAL in WAL mode: commits are not fsynced (SyncWal() does that, off
    // the network thread); the WAL header at each restart and every
    // checkpoint still are.
    return ExpectInt(db, "PRAGMA synchronous = NORMAL", "PRAGMA synchronous", 1,
                     "synchronous=NORMAL could not be set");
  }
  return ExpectInt(db, "PRAGMA synchronous = FULL", "PRAGMA synchronous", 2,
                   "synchronous=FULL could not be set");
}

}  // namespace

Result<std::unique_ptr<RelayStore>> RelayStore::Open(const fs::path& data_dir,
                                                     Durability durability) {
  std::error_code ec;
  if (!fs::exists(data_dir, ec)) {
    if (!fs::create_directories(data_dir, ec) || ec) {
      return Error{Errc::kIo, "cannot create the relay data directory"};
    }
    fs::permissions(data_dir, fs::perms::owner_all, fs::perm_options::replace, ec);
    if (ec) return Error{Errc::kIo, "cannot set the relay data directory's permissions"};
  } else if (!fs::is_directory(data_dir, ec)) {
    return Error{Errc::kIo, "the relay data path is not a directory"};
  }
  const fs::path path = data_dir / kStoreFileName;

  // Once per process, before SQLite's first use: no global allocation
  // statistics, which take a process-wide mutex on every SQLite malloc and
  // free (~6% of the relay's CPU under load). Refused, harmlessly, if SQLite
  // was already initialised (a test binary that opened another database).
  static const int kMemStatusOff = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  (void)kMemStatusOff;

  auto impl = std::make_unique<Impl>();
  RHIZOME_TRY(OpenConnection(path, impl->conn));
  sqlite3* db = impl->conn.db;

  // Durability (docs/relay-internals.md): WAL, every commit fsynced.
  auto journal = PragmaText(db, "PRAGMA journal_mode = WAL");
  if (!journal) return journal.error();
  if (*journal != "wal") return Error{Errc::kUnsupported, "WAL mode could not be enabled"};
  RHIZOME_TRY(SetSynchronous(db, durability));
  // SECURITY: deleted (acknowledged, expired) blobs are overwritten inside the
  // database file, not left in free pages.
  RHIZOME_TRY(ExpectInt(db, "PRAGMA secure_delete = ON", "PRAGMA secure_delete", 1,
                        "secure_delete could not be enabled"));
  // SECURITY: sorts and temporary tables never spill to a file outside the
  // data directory.
  RHIZOME_TRY(ExpectInt(db, "PRAGMA temp_store = MEMORY", "PRAGMA temp_store", 2,
                        "temp_store=MEMORY could not be set"));
  RHIZOME_TRY(Exec(db, "PRAGMA journal_size_limit = 16777216"));
  static_assert(kWalSizeLimitBytes == 16777216);

  auto version = PragmaInt(db, "PRAGMA user_version");
  if (!version) return version.error();
  if (*version > kStoreSchemaVersion) {
    return Error{Errc::kUnsupported, "relay database was written by a newer relay"};
  }
  if (*version < kStoreSchemaVersion) {
    RHIZOME_TRY(Exec(db, "BEGIN IMMEDIATE"));
    Status st;
    if (*version == 0) st = Exec(db, kSchemaSql);
    if (st) st = Exec(db, kSchemaV2Sql);
    if (!st) {
      (void)Exec(db, "ROLLBACK");
      return st.error();
    }
    RHIZOME_TRY(Exec(db, "COMMIT"));
  }
  RHIZOME_TRY(impl->PrepareAll());

  // Checkpoints: the hook replaces SQLite's automatic checkpoint (which would
  // run inside COMMIT on the caller's thread) with a wake-up of our thread.
  RHIZOME_TRY(OpenConnection(path, impl->ckpt_conn));
  RHIZOME_TRY(SetSynchronous(impl->ckpt_conn.db, durability));
  // The RESTART pass waits for the writer's transaction and then for
  // readers while it holds the writer lock (the network thread waits in
  // Begin() meanwhile): it gives up after kCheckpointBusyTimeoutMs and
  // leaves the restart to a later round (a long-lived reader, such as an
  // operator's sqlite3 shell, must not stall the relay).
  sqlite3_busy_handler(impl->ckpt_conn.db, &ShortBusyWait,
                       reinterpret_cast<void*>(std::intptr_t{kCheckpointBusyTimeoutMs}));
  sqlite3_wal_hook(db, &Impl::WalHook, impl.get());
  if (durability == Durability::kFsyncByCaller) {
    // The WAL exists by now: opening a WAL-mode database (the user_version
    // read above) creates it.
    const fs::path wal = data_dir / (std::string(kStoreFileName) + "-wal");
    impl->wal_fd = ::open(wal.c_str(), O_RDWR | O_CLOEXEC);
    if (impl->wal_fd < 0) {
      return Error{Errc::kIo, "cannot open the relay database's write-ahead log"};
    }
  }
  impl->durability = durability;
  impl->data_dir = data_dir;
  impl->dir_fd = ::open(data_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (impl->dir_fd < 0) return Error{Errc::kIo, "cannot open the relay data directory"};
  // One store per data directory: the journal files are this process's alone
  // (another relay's Open() would move them away under it).
  if (::flock(impl->dir_fd, LOCK_EX | LOCK_NB) != 0) {
    return Error{Errc::kIo, "the relay data directory is in use by another relay"};
  }
  RHIZOME_TRY(impl->RecoverJournal());
  impl->ckpt_thread = std::thread([p = impl.get()] { p->CheckpointLoop(); });

  fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace,
                  ec);
  return std::unique_ptr<RelayStore>(new RelayStore(std::move(impl)));
}

bool RelayStore::in_transaction() const { return sqlite3_get_autocommit(impl_->conn.db) == 0; }

Status RelayStore::Begin() {
  if (in_transaction()) return Error{Errc::kInvalidArgument, "a transaction is already open"};
  if (impl_->ckpt_final.load(std::memory_order_acquire)) {
    // The checkpointer's short final pass (see CheckpointLoop) goes first.
    std::unique_lock<std::mutex> lock(impl_->mu);
    impl_->final_cv.wait_for(lock, std::chrono::milliseconds(kStoreBusyTimeoutMs),
                             [this] { return !impl_->ckpt_final.load(std::memory_order_acquire); });
  }
  if (impl_->broken) return Error{Errc::kIo, "cannot read the relay message journal back"};
  Use use(impl_->begin);
  return use.Run();
}

Status RelayStore::Commit() {
  if (!in_transaction()) {
    // SQLite may have ended it after an error: what the cache followed is gone.
    impl_->ClearQueueCache();
    return Error{Errc::kInvalidArgument, "no transaction is open"};
  }
  Impl& im = *impl_;
  const auto now = std::chrono::steady_clock::now();
  // A journal file is retired when it is large or old: its held messages
  // move into SQLite, and its acknowledged blobs leave the disk with it.
  const bool rotate_due =
      im.journal && im.journal_bytes > 0 &&
      (im.journal_bytes >= im.rotate_bytes || now - im.journal_started >= im.max_age);
  Status st;
  if (rotate_due && !im.rotate_at_commit) st = im.MigrateAll();
  if (st) st = im.ApplyCounterChanges();
  std::shared_ptr<JournalFile> target = im.rotate_at_commit ? nullptr : im.journal;
  std::uint64_t offset = im.rotate_at_commit ? 0 : im.journal_bytes;
  bool created = false;
  ByteSpan bytes;
  if (st) {
    im.BuildBatch();
    if (!im.batch.empty()) {
      bytes = im.batch.Finish();
      if (!target) {
        auto file = im.CreateJournalFile();
        if (!file) {
          st = file.error();
        } else {
          target = std::move(*file);
          offset = 0;
          created = true;
        }
      }
      if (st && !WriteAllAt(target->fd, bytes, offset)) {
        st = Error{Errc::kIo, "cannot write the relay message journal"};
      }
      // Even after a failed write: whatever reached the file gets synced.
      if (target) target->unsynced.store(true, std::memory_order_release);
      if (st && im.durability == Durability::kFsync &&
          (!SyncFd(target->fd, true) || (created && !SyncFd(im.dir_fd, false)))) {
        st = Error{Errc::kIo, "cannot sync the relay message journal to disk"};
      }
    }
  }
  if (st) {
    Use use(im.commit);
    st = use.Run();
  }
  if (!st) {
    // Nothing of this transaction may stay in the journal.
    // If it cannot be cut off, the store stops (Begin() fails from now on).
    if (created) {
      if (::unlink(target->path.c_str()) != 0) im.broken = true;
    } else if (target && !bytes.empty()) {
      if (::ftruncate(target->fd, static_cast<off_t>(offset)) != 0) im.broken = true;
      // A sync may have covered the batch already: the cut must be synced too.
      target->unsynced.store(true, std::memory_order_release);
    }
    Rollback();  // a failed COMMIT may leave the transaction open
    return st;
  }
  const std::uint64_t gen = im.commits_done.load(std::memory_order_relaxed) + 1;
  if (im.rotate_at_commit) {
    im.migrated_through = im.migrating_through;
    if (im.journal) im.retired.push_back({im.journal, gen});
    im.journal = nullptr;
    im.journal_bytes = 0;
  }
  if (created) {
    im.journal = target;
    im.journal_started = now;
    std::lock_guard<std::mutex> lock(im.sync_mu);
    im.files_to_sync.push_back(target);
    im.dir_unsynced = true;
  }
  if (!bytes.empty()) im.journal_bytes = offset + bytes.size();
  im.MarkJournaled();
  im.EndTransactionState();
  im.commits_done.store(gen, std::memory_order_release);
  im.RemoveRetiredFiles();
  return {};
}

Status RelayStore::SyncWal() {
  constexpr Error kSyncFailed{Errc::kIo, "cannot sync the relay database to disk"};
  Impl& im = *impl_;
  if (im.wal_fd < 0) return {};
  // Sticky: Linux reports a writeback error once per open file, so after a
  // failure a later fdatasync may succeed although pages were lost.
  std::lock_guard<std::mutex> serial(im.sync_run_mu);
  if (im.sync_failed.load(std::memory_order_acquire)) return kSyncFailed;
  // Every commit up to `gen` has written its journal batch and its WAL
  // frames, and marked them (unsynced, wal_commits) before it counted as
  // done: the syncs below cover them. A file or WAL with nothing new since
  // the last sync is skipped (most commits only append to the journal; a
  // retired file is never written again). Skipping is safe because a mark
  // is only ever cleared here, under sync_run_mu, by a sync that then runs
  // to completion before the next one starts: a cleared mark means a
  // finished (or failed, and then sticky) sync that began after the write.
  const std::uint64_t gen = im.commits_done.load(std::memory_order_acquire);
  const std::uint64_t wal_commits = im.wal_commits.load(std::memory_order_acquire);
  std::vector<std::shared_ptr<JournalFile>> files;
  bool dir = false;
  {
    std::lock_guard<std::mutex> lock(im.sync_mu);
    files = im.files_to_sync;
    dir = im.dir_unsynced;
    im.dir_unsynced = false;
  }
  bool ok = true;
  for (const auto& f : files) {
    if (!ok) break;
    if (!f->unsynced.exchange(false, std::memory_order_acq_rel)) continue;
    im.file_syncs.fetch_add(1, std::memory_order_relaxed);
    ok = SyncFd(f->fd, true);
  }
  ok = ok && (!dir || SyncFd(im.dir_fd, false));
  if (ok && wal_commits != im.wal_commits_synced) {
    im.wal_syncs.fetch_add(1, std::memory_order_relaxed);
    ok = SyncFd(im.wal_fd, true);
    if (ok) im.wal_commits_synced = wal_commits;
  }
  if (!ok) {
    im.sync_failed.store(true, std::memory_order_release);
    return kSyncFailed;
  }
  im.synced_through.store(gen, std::memory_order_release);
  return {};
}

void RelayStore::Rollback() {
  Impl& im = *impl_;
  if (in_transaction()) {
    Use use(im.rollback);
    (void)use.Run();
  }
  // It followed the columns inside the transaction (which SQLite may have
  // rolled back by itself after an error).
  im.ClearQueueCache();
  if (!im.held_changed) {
    im.ClearCounterChanges();
    im.EndTransactionState();
    return;
  }
  // The held set is what the journal file says (after a failed commit its
  // batch was cut off again).
  if (!im.ReloadHeld()) im.broken = true;
  im.EndTransactionState();
}

Result<StoreTotals> RelayStore::LoadTotals() {
  StoreTotals t;
  {
    Use use(impl_->count_queues);
    auto row = use.Step();
    if (!row) return row.error();
    if (!*row) return Error{Errc::kInternal, "query returned no row"};
    t.queues = use.ColU64(0);
    t.bytes += use.ColU64(1);
  }
  {
    Use use(impl_->count_boards);
    auto row = use.Step();
    if (!row) return row.error();
    if (!*row) return Error{Errc::kInternal, "query returned no row"};
    t.boards = use.ColU64(0);
    t.bytes += use.ColU64(1);
  }
  {
    Use use(impl_->max_seq);
    auto row = use.Step();
    if (!row) return row.error();
    if (!*row) return Error{Errc::kInternal, "query returned no row"};
    t.max_message_seq = std::max(use.ColInt(0), impl_->max_seq_seen);
  }
  t.bytes += impl_->staged_bytes;
  for (const auto& [row, q] : impl_->staged) t.bytes -= std::min(t.bytes, q.deleted_bytes);
  return t;
}

// ---- queues ----------------------------------------------------------------

Result<std::optional<QueueByRecipient>> RelayStore::FindQueueByRecipient(
    const protocol::Id& recipient_id) {
  Use use(impl_->queue_by_recipient);
  use.Blob(1, recipient_id);
  auto row = use.Step();
  if (!row) return row.error();
  if (!*row) return std::optional<QueueByRecipient>();
  QueueByRecipient q;
  q.row = use.ColInt(0);
  if (!use.ColArray(1, q.recipient_key)) return kDamagedRow;
  q.send_key_set = use.ColInt(2) != 0;
  return std::optional<QueueByRecipient>(q);
}

Result<std::optional<QueueBySender>> RelayStore::FindQueueBySender(const protocol::Id& sender_id,
                                                                   MutableByteSpan send_key_out) {
  Impl& im = *impl_;
  auto cached = im.queue_cache.find(sender_id);
  if (cached == im.queue_cache.end()) {
    Use use(im.queue_by_sender);
    use.Blob(1, sender_id);
    auto row = use.Step();
    if (!row) return row.error();
    if (!*row) return std::optional<QueueBySender>();
    Impl::CachedQueue c;
    c.row = use.ColInt(0);
    if (!use.ColArray(1, c.recipient_id)) return kDamagedRow;
    if (!use.ColIsNull(2)) {
      if (use.ColBlob(2).size() != send_key_out.size()) return kDamagedRow;
      c.send_key = crypto::SecretBytes::CopyFrom(use.ColBlob(2));
    }
    c.msg_count = use.ColInt(3);
    c.msg_bytes = use.ColInt(4);
    if (im.queue_cache.size() >= Impl::kQueueCacheEntries) im.ClearQueueCache();
    // The row first: an entry must never exist without it (NoteCounters
    // finds entries by row), while a row without an entry is harmless.
    im.queue_cache_rows[c.row] = sender_id;
    cached = im.queue_cache.emplace(sender_id, std::move(c)).first;
  }
  const Impl::CachedQueue& c = cached->second;
  QueueBySender q;
  q.row = c.row;
  q.recipient_id = c.recipient_id;
  q.send_key_set = !c.send_key.empty();
  if (q.send_key_set) {
    if (c.send_key.size() != send_key_out.size()) return kDamagedRow;
    std::memcpy(send_key_out.data(), c.send_key.expose().data(), send_key_out.size());
  }
  q.msg_count = FromDb(c.msg_count);
  q.msg_bytes = FromDb(c.msg_bytes);
  if (auto it = im.staged.find(q.row); it != im.staged.end()) {
    const auto& sq = it->second;
    q.msg_count = q.msg_count + sq.by_seq.size() - std::min(q.msg_count, sq.deleted_count);
    q.msg_bytes = q.msg_bytes + sq.bytes - std::min(q.msg_bytes, sq.deleted_bytes);
  }
  return std::optional<QueueBySender>(q);
}

Result<bool> RelayStore::InsertQueue(const protocol::Id& recipient_id,
                                     const protocol::Id& sender_id,
                                     const protocol::PublicKey& recipient_key,
                                     std::uint64_t created) {
  Use use(impl_->insert_queue);
  use.Blob(1, recipient_id).Blob(2, sender_id).Blob(3, recipient_key).U64(4, created);
  RHIZOME_TRY(use.Run());
  return sqlite3_changes(impl_->conn.db) == 1;
}

Result<bool> RelayStore::SetSendKey(std::int64_t queue_row, ByteSpan send_key) {
  Use use(impl_->set_send_key);
  use.Int(1, queue_row).Blob(2, send_key);
  RHIZOME_TRY(use.Run());
  const bool set = sqlite3_changes(impl_->conn.db) == 1;
  if (set) impl_->ForgetQueue(queue_row);
  return set;
}

Result<std::uint64_t> RelayStore::DeleteQueue(std::int64_t queue_row) {
  std::uint64_t bytes = 0;
  std::uint64_t already_deleted = 0;  // still in the table's counter
  auto held = impl_->staged.find(queue_row);
  if (held != impl_->staged.end()) {
    bytes = held->second.bytes;
    already_deleted = held->second.deleted_bytes;
  }
  {
    Use use(impl_->queue_bytes);
    use.Int(1, queue_row);
    auto row = use.Step();
    if (!row) return row.error();
    if (*row) bytes += use.ColU64(0) - std::min(use.ColU64(0), already_deleted);
  }
  {
    Use use(impl_->delete_queue_messages);
    use.Int(1, queue_row);
    RHIZOME_TRY(use.Run());
  }
  {
    Use use(impl_->delete_queue);
    use.Int(1, queue_row);
    RHIZOME_TRY(use.Run());
  }
  impl_->ForgetQueue(queue_row);
  // Held messages go without deletion records: once the queue row is gone,
  // the journal's records for it are void (rows are never reused).
  if (held != impl_->staged.end()) {
    auto& q = held->second;
    for (auto m = q.by_seq.begin(); m != q.by_seq.end();) impl_->Unstage(q, m);
    impl_->staged.erase(held);
    impl_->held_changed = true;
  }
  return bytes;
}

// ---- messages --------------------------------------------------------------

Status RelayStore::InsertMessage(std::int64_t queue_row, std::int64_t seq,
                                 const protocol::Id& message_id, std::uint64_t received_at,
                                 std::uint64_t expires_at, ByteSpan blob) {
  Impl& im = *impl_;
  // seq is the messages table's primary key and a journal record's identity:
  // it must grow (the engine takes seqs above LoadTotals().max_message_seq).
  if (seq <= im.max_seq_seen || seq > kMaxJournalSeq) {
    return Error{Errc::kInternal, "relay message sequence number does not grow"};
  }
  if (in_transaction()) {
    // Held (see Impl::staged); journaled at Commit().
    Impl::StagedMessage m;
    m.message_id = message_id;
    m.received_at = received_at;
    m.expires_at = expires_at;
    m.blob.assign(blob.begin(), blob.end());
    im.Hold(queue_row, seq, std::move(m));
    im.pending_puts.emplace_back(queue_row, seq);
    if (im.staged_bytes > kMaxStagedMessageBytes) return im.MigrateAll();
    return {};
  }
  {
    Use use(impl_->insert_message);
    use.Int(1, seq).Int(2, queue_row).Blob(3, message_id).U64(4, received_at).U64(5, expires_at);
    use.Blob(6, blob);
    RHIZOME_TRY(use.Run());
  }
  im.max_seq_seen = std::max(im.max_seq_seen, seq);
  Use use(impl_->queue_add);
  use.Int(1, queue_row).U64(2, blob.size()).U64(3, 1);
  RHIZOME_TRY(use.Run());
  im.NoteCounters(queue_row, 1, static_cast<std::int64_t>(blob.size()));
  return {};
}

Result<std::vector<StoredMessage>> RelayStore::MessagesAfter(std::int64_t queue_row,
                                                             std::int64_t after_seq,
                                                             std::uint64_t now, std::size_t limit) {
  std::vector<StoredMessage> out;
  if (limit == 0) return out;
  Use use(impl_->messages_after);
  use.Int(1, queue_row).Int(2, after_seq).U64(3, now).U64(4, limit);
  while (true) {
    auto row = use.Step();
    if (!row) return row.error();
    if (!*row) break;
    StoredMessage m;
    m.seq = use.ColInt(0);
    if (!use.ColArray(1, m.message_id)) return kDamagedRow;
    m.received_at = use.ColU64(2);
    ByteSpan blob = use.ColBlob(3);
    m.blob.assign(blob.begin(), blob.end());
    out.push_back(std::move(m));
  }
  // Merge in the staged ones, by seq (in practice all above the stored ones).
  auto it = impl_->staged.find(queue_row);
  if (it == impl_->staged.end()) return out;
  const std::size_t stored = out.size();
  for (auto m = it->second.by_seq.upper_bound(after_seq); m != it->second.by_seq.end(); ++m) {
    if (out.size() - stored >= limit) break;
    if (m->second.expires_at <= now) continue;
    StoredMessage sm;
    sm.seq = m->first;
    sm.message_id = m->second.message_id;
    sm.received_at = m->second.received_at;
    sm.blob = m->second.blob;
    out.push_back(std::move(sm));
  }
  if (out.size() > stored && stored > 0) {
    std::inplace_merge(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(stored), out.end(),
                       [](const StoredMessage& a, const StoredMessage& b) { return a.seq < b.seq; });
  }
  if (out.size() > limit) out.resize(limit);
  return out;
}

Result<std::optional<std::uint64_t>> RelayStore::DeleteMessage(std::int64_t queue_row,
                                                               std::int64_t seq) {
  Impl& im = *impl_;
  if (auto q = im.staged.find(queue_row); q != im.staged.end()) {
    if (auto m = q->second.by_seq.find(seq); m != q->second.by_seq.end()) {
      if (m->second.journaled && !in_transaction()) {
        // Its deletion record needs a commit.
        RHIZOME_TRY(Begin());
        auto deleted = DeleteMessage(queue_row, seq);
        if (!deleted) {
          Rollback();
          return deleted;
        }
        RHIZOME_TRY(Commit());
        return deleted;
      }
      // Pending: stored and acknowledged in the same transaction, it is never
      // written anywhere. Journaled: a deletion record at Commit().
      if (m->second.journaled) im.pending_dels.emplace_back(queue_row, seq);
      const std::uint64_t size = im.Unstage(q->second, m);
      if (q->second.empty()) im.staged.erase(q);
      return std::optional<std::uint64_t>(size);
    }
  }
  std::uint64_t size = 0;
  {
    Use use(im.message_size);
    use.Int(1, seq).Int(2, queue_row);
    auto row = use.Step();
    if (!row) return row.error();
    if (!*row) return std::optional<std::uint64_t>();
    size = use.ColU64(0);
  }
  {
    Use use(im.delete_message);
    use.Int(1, seq);
    RHIZOME_TRY(use.Run());
  }
  if (in_transaction()) {
    // The counter columns follow at Commit(): one UPDATE per queue and
    // commit instead of one per ACK.
    auto& q = im.staged[queue_row];
    if (q.deleted_count == 0) im.counter_queues.push_back(queue_row);
    ++q.deleted_count;
    q.deleted_bytes += size;
    return std::optional<std::uint64_t>(size);
  }
  Use use(im.queue_sub);
  use.Int(1, queue_row).U64(2, size);
  RHIZOME_TRY(use.Run());
  im.NoteCounters(queue_row, -1, -static_cast<std::int64_t>(size));
  return std::optional<std::uint64_t>(size);
}

// ---- boards ----------------------------------------------------------------

namespace {

Result<std::optional<BoardRecord>> ReadBoardRow(Use& use) {
  auto row = use.Step();
  if (!row) return row.error();
  if (!*row) return std::optional<BoardRecord>();
  BoardRecord b;
  b.row = use.ColInt(0);
  const std::uint64_t ttl = use.ColU64(1);
  if (ttl > UINT32_MAX) return kDamagedRow;
  b.ttl_seconds = static_cast<std::uint32_t>(ttl);
  b.next_seq = use.ColU64(2);
  b.item_count = use.ColU64(3);
  b.item_bytes = use.ColU64(4);
  b.expires_at = use.ColU64(5);
  return std::optional<BoardRecord>(b);
}

}  // namespace

Result<std::optional<BoardRecord>> RelayStore::FindBoard(const protocol::Id& board_id,
                                                         BoardKeyKind kind,
                                                         MutableByteSpan key_out) {
  Use use(impl_->board_by_id);
  use.Blob(1, board_id);
  auto board = ReadBoardRow(use);
  if (!board) return board.error();
  if (!board->has_value()) return board;
  if (!use.ColInto(kind == BoardKeyKind::kRead ? 6 : 7, key_out)) return kDamagedRow;
  return board;
}

Result<std::optional<bool>> RelayStore::BoardKeysEqual(const protocol::Id& board_id,
                                                       ByteSpan read_key, ByteSpan write_key) {
  Use use(impl_->board_by_id);
  use.Blob(1, board_id);
  auto board = ReadBoardRow(use);
  if (!board) return board.error();
  if (!board->has_value()) return std::optional<bool>();
  // Both compared, no short cut, so timing does not tell which one differed.
  const bool read_equal = ConstantTimeEqual(use.ColBlob(6), read_key);
  const bool write_equal = ConstantTimeEqual(use.ColBlob(7), write_key);
  return std::optional<bool>(read_equal && write_equal);
}

Result<bool> RelayStore::InsertBoard(const protocol::Id& board_id, ByteSpan read_key,
                                     ByteSpan write_key, std::uint32_t ttl_seconds,
                                     std::uint64_t expires_at) {
  Use use(impl_->insert_board);
  use.Blob(1, board_id).Blob(2, read_key).Blob(3, write_key).Int(4, ttl_seconds);
  use.U64(5, expires_at);
  RHIZOME_TRY(use.Run());
  return sqlite3_changes(impl_->conn.db) == 1;
}

Status RelayStore::InsertBoardItem(const BoardRecord& board, std::uint64_t received_at,
                                   std::uint64_t expires_at, std::uint64_t board_expires_at,
                                   ByteSpan blob) {
  {
    Use use(impl_->insert_item);
    use.Int(1, board.row).U64(2, board.next_seq).U64(3, received_at).U64(4, expires_at);
    use.Blob(5, blob);
    RHIZOME_TRY(use.Run());
  }
  Use use(impl_->board_add);
  use.Int(1, board.row).U64(2, board.next_seq + 1).U64(3, blob.size()).U64(4, board_expires_at);
  return use.Run();
}

Result<std::vector<StoredBoardItem>> RelayStore::BoardItemsAfter(
    std::int64_t board_row, std::uint64_t cursor, std::uint64_t now, std::size_t limit,
    std::size_t byte_budget, std::size_t per_item_overhead) {
  std::vector<StoredBoardItem> out;
  if (limit == 0) return out;
  Use use(impl_->items_after);
  use.Int(1, board_row).U64(2, cursor).U64(3, now).U64(4, limit);
  std::size_t used = 0;
  while (true) {
    auto row = use.Step();
    if (!row) return row.error();
    if (!*row) break;
    ByteSpan blob = use.ColBlob(2);
    const std::size_t cost = blob.size() + per_item_overhead;
    if (cost > byte_budget - used) break;  // used <= byte_budget always
    used += cost;
    StoredBoardItem item;
    item.seq = use.ColU64(0);
    item.received_at = use.ColU64(1);
    item.blob.assign(blob.begin(), blob.end());
    out.push_back(std::move(item));
  }
  return out;
}

// ---- expiry ----------------------------------------------------------------

Result<ExpireCounts> RelayStore::ExpireBatch(std::uint64_t now, std::size_t max_rows) {
  if (!in_transaction()) return Error{Errc::kInvalidArgument, "no transaction is open"};
  ExpireCounts counts;
  // Held messages first (only a very short TTL expires them this soon).
  Impl& im = *impl_;
  for (auto q = im.staged.begin(); q != im.staged.end() && counts.messages < max_rows;) {
    auto& by_seq = q->second.by_seq;
    for (auto m = by_seq.begin(); m != by_seq.end() && counts.messages < max_rows;) {
      if (m->second.expires_at > now) {
        ++m;
        continue;
      }
      ++counts.messages;
      if (m->second.journaled) im.pending_dels.emplace_back(q->first, m->first);
      counts.bytes += im.Unstage(q->second, m);
    }
    q = q->second.empty() ? im.staged.erase(q) : std::next(q);
  }
  struct Victim {
    std::int64_t row;
    std::int64_t owner;
    std::uint64_t size;
  };
  std::vector<Victim> victims;

  auto collect = [&](const Stmt& stmt, std::size_t limit) -> Status {
    victims.clear();
    if (limit == 0) return {};
    Use use(stmt);
    use.U64(1, now).U64(2, limit);
    while (true) {
      auto row = use.Step();
      if (!row) return row.error();
      if (!*row) break;
      victims.push_back({use.ColInt(0), use.ColInt(1), use.ColU64(2)});
    }
    return {};
  };

  const std::size_t staged_expired = static_cast<std::size_t>(counts.messages);
  RHIZOME_TRY(collect(impl_->expired_messages, max_rows - staged_expired));
  for (const auto& v : victims) {
    {
      Use use(impl_->delete_message);
      use.Int(1, v.row);
      RHIZOME_TRY(use.Run());
    }
    Use use(impl_->queue_sub);
    use.Int(1, v.owner).U64(2, v.size);
    RHIZOME_TRY(use.Run());
    impl_->NoteCounters(v.owner, -1, -static_cast<std::int64_t>(v.size));
    ++counts.messages;
    counts.bytes += v.size;
  }

  RHIZOME_TRY(collect(impl_->expired_items, max_rows));
  for (const auto& v : victims) {
    {
      Use use(impl_->delete_item);
      use.Int(1, v.row);
      RHIZOME_TRY(use.Run());
    }
    Use use(impl_->board_sub);
    use.Int(1, v.owner).U64(2, v.size);
    RHIZOME_TRY(use.Run());
    ++counts.board_items;
    counts.bytes += v.size;
  }

  std::vector<std::int64_t> boards;
  {
    Use use(impl_->expired_boards);
    use.U64(1, now).U64(2, max_rows);
    while (true) {
      auto row = use.Step();
      if (!row) return row.error();
      if (!*row) break;
      boards.push_back(use.ColInt(0));
    }
  }
  for (std::int64_t row : boards) {
    Use use(impl_->delete_board);
    use.Int(1, row);
    RHIZOME_TRY(use.Run());
    ++counts.boards;
  }
  return counts;
}

int RelayStore::wal_fd_for_test() const { return impl_->wal_fd; }

RelayStore::SyncCounts RelayStore::sync_counts_for_test() const {
  return {impl_->file_syncs.load(), impl_->wal_syncs.load()};
}

void RelayStore::SetJournalLimitsForTest(std::uint64_t rotate_bytes,
                                         std::chrono::milliseconds max_age) {
  impl_->rotate_bytes = rotate_bytes;
  impl_->max_age = max_age;
}

std::uint64_t RelayStore::staged_message_count() const { return impl_->pending_count; }

std::uint64_t RelayStore::journaled_message_count() const {
  return impl_->staged_count - impl_->pending_count;
}

Status RelayStore::CheckpointForTest() {
  std::unique_lock<std::mutex> lock(impl_->mu);
  const std::uint64_t target = impl_->ckpts_done + 1;
  impl_->ckpt_requested = true;
  impl_->cv.notify_one();
  impl_->done_cv.wait(lock, [&] { return impl_->ckpts_done >= target || impl_->ckpt_stop; });
  return {};
}

}  // namespace rhizome::relay
