#include "store.h"

#include <fcntl.h>
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
PRAGMA user_version = 1;
)sql";

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

  // Messages inserted in the open transaction and not yet written to SQLite
  // (see "Staged messages" in docs/relay-internals.md): by queue row, then by
  // seq. A message acknowledged in the transaction that stored it never
  // reaches the database file; the rest are written by FlushStaged() before
  // COMMIT, or once they hold kMaxStagedMessageBytes.
  struct StagedMessage {
    protocol::Id message_id{};
    std::uint64_t received_at = 0;
    std::uint64_t expires_at = 0;
    Bytes blob;
  };
  struct StagedQueue {
    std::map<std::int64_t, StagedMessage> by_seq;
    std::uint64_t bytes = 0;
    // Stored messages deleted in this transaction: the queue's counter
    // columns are brought down once, at FlushStaged(), not per ACK.
    std::uint64_t deleted_count = 0;
    std::uint64_t deleted_bytes = 0;
    bool empty() const { return by_seq.empty() && deleted_count == 0; }
  };
  std::unordered_map<std::int64_t, StagedQueue> staged;
  std::uint64_t staged_bytes = 0;
  std::uint64_t staged_count = 0;
  std::int64_t staged_max_seq = 0;

  using StagedIt = std::map<std::int64_t, StagedMessage>::iterator;
  // Removes the staged message `m` of `q` and advances `m`; returns its size.
  std::uint64_t Unstage(StagedQueue& q, StagedIt& m) {
    const std::uint64_t size = m->second.blob.size();
    q.bytes -= size;
    staged_bytes -= size;
    --staged_count;
    m = q.by_seq.erase(m);
    return size;
  }

  void DropStaged() {
    staged.clear();
    staged_bytes = 0;
    staged_count = 0;
    staged_max_seq = 0;
  }

  // Writes every staged message and its queue's counters into the open
  // transaction. On error the caller rolls back (which drops the rest).
  Status FlushStaged() {
    for (auto& [queue_row, q] : staged) {
      for (auto& [seq, m] : q.by_seq) {
        Use use(insert_message);
        use.Int(1, seq).Int(2, queue_row).Blob(3, m.message_id).U64(4, m.received_at);
        use.U64(5, m.expires_at).Blob(6, m.blob);
        RHIZOME_TRY(use.Run());
      }
      const auto count = static_cast<std::int64_t>(q.by_seq.size() - q.deleted_count);
      const auto bytes = static_cast<std::int64_t>(q.bytes - q.deleted_bytes);
      if (count == 0 && bytes == 0) continue;
      Use use(queue_add);
      use.Int(1, queue_row).Int(2, bytes).Int(3, count);
      RHIZOME_TRY(use.Run());
    }
    DropStaged();
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

  static int WalHook(void* arg, sqlite3*, const char*, int pages) {
    if (pages >= kCheckpointWalPages) static_cast<Impl*>(arg)->RequestCheckpoint();
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
  if (*version == 0) {
    RHIZOME_TRY(Exec(db, "BEGIN IMMEDIATE"));
    if (auto st = Exec(db, kSchemaSql); !st) {
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
  impl_->DropStaged();
  Use use(impl_->begin);
  return use.Run();
}

Status RelayStore::Commit() {
  if (!in_transaction()) return Error{Errc::kInvalidArgument, "no transaction is open"};
  Status st = impl_->FlushStaged();
  if (st) {
    Use use(impl_->commit);
    st = use.Run();
  }
  if (!st) Rollback();  // a failed COMMIT may leave the transaction open
  return st;
}

Status RelayStore::SyncWal() {
  constexpr Error kSyncFailed{Errc::kIo, "cannot sync the relay database to disk"};
  if (impl_->wal_fd < 0) return {};
  // Sticky: Linux reports a writeback error once per open file, so after a
  // failure a later fdatasync may succeed although pages were lost.
  if (impl_->sync_failed.load(std::memory_order_acquire)) return kSyncFailed;
  int rc;
  do {
    rc = ::fdatasync(impl_->wal_fd);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    impl_->sync_failed.store(true, std::memory_order_release);
    return kSyncFailed;
  }
  return {};
}

void RelayStore::Rollback() {
  impl_->DropStaged();
  if (!in_transaction()) return;
  Use use(impl_->rollback);
  (void)use.Run();
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
    t.max_message_seq = std::max(use.ColInt(0), impl_->staged_max_seq);
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
  Use use(impl_->queue_by_sender);
  use.Blob(1, sender_id);
  auto row = use.Step();
  if (!row) return row.error();
  if (!*row) return std::optional<QueueBySender>();
  QueueBySender q;
  q.row = use.ColInt(0);
  if (!use.ColArray(1, q.recipient_id)) return kDamagedRow;
  q.send_key_set = !use.ColIsNull(2);
  if (q.send_key_set && !use.ColInto(2, send_key_out)) return kDamagedRow;
  q.msg_count = use.ColU64(3);
  q.msg_bytes = use.ColU64(4);
  if (auto it = impl_->staged.find(q.row); it != impl_->staged.end()) {
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
  return sqlite3_changes(impl_->conn.db) == 1;
}

Result<std::uint64_t> RelayStore::DeleteQueue(std::int64_t queue_row) {
  std::uint64_t bytes = 0;
  std::uint64_t already_deleted = 0;  // still in the table's counter
  if (auto it = impl_->staged.find(queue_row); it != impl_->staged.end()) {
    bytes = it->second.bytes;
    already_deleted = it->second.deleted_bytes;
    impl_->staged_bytes -= it->second.bytes;
    impl_->staged_count -= it->second.by_seq.size();
    impl_->staged.erase(it);
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
  Use use(impl_->delete_queue);
  use.Int(1, queue_row);
  RHIZOME_TRY(use.Run());
  return bytes;
}

// ---- messages --------------------------------------------------------------

Status RelayStore::InsertMessage(std::int64_t queue_row, std::int64_t seq,
                                 const protocol::Id& message_id, std::uint64_t received_at,
                                 std::uint64_t expires_at, ByteSpan blob) {
  Impl& im = *impl_;
  if (in_transaction()) {
    // Staged (see Impl::staged); written at the latest by Commit(). seq is
    // the table's primary key: unique across queues. The engine's seqs grow,
    // so only a seq that does not is looked up everywhere.
    if (seq <= im.staged_max_seq) {
      for (const auto& [row, other] : im.staged) {
        if (other.by_seq.contains(seq)) {
          return Error{Errc::kInternal, "relay message sequence number reused"};
        }
      }
    }
    auto& q = im.staged[queue_row];
    auto [it, fresh] = q.by_seq.try_emplace(seq);
    if (!fresh) return Error{Errc::kInternal, "relay message sequence number reused"};
    it->second.message_id = message_id;
    it->second.received_at = received_at;
    it->second.expires_at = expires_at;
    it->second.blob.assign(blob.begin(), blob.end());
    q.bytes += blob.size();
    im.staged_bytes += blob.size();
    ++im.staged_count;
    im.staged_max_seq = std::max(im.staged_max_seq, seq);
    if (im.staged_bytes > kMaxStagedMessageBytes) return im.FlushStaged();
    return {};
  }
  {
    Use use(impl_->insert_message);
    use.Int(1, seq).Int(2, queue_row).Blob(3, message_id).U64(4, received_at).U64(5, expires_at);
    use.Blob(6, blob);
    RHIZOME_TRY(use.Run());
  }
  Use use(impl_->queue_add);
  use.Int(1, queue_row).U64(2, blob.size()).U64(3, 1);
  return use.Run();
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
  std::uint64_t size = 0;
  if (auto q = impl_->staged.find(queue_row); q != impl_->staged.end()) {
    if (auto m = q->second.by_seq.find(seq); m != q->second.by_seq.end()) {
      // Stored and acknowledged in the same transaction: it never reaches the
      // database file.
      size = impl_->Unstage(q->second, m);
      if (q->second.empty()) impl_->staged.erase(q);
      return std::optional<std::uint64_t>(size);
    }
  }
  {
    Use use(impl_->message_size);
    use.Int(1, seq).Int(2, queue_row);
    auto row = use.Step();
    if (!row) return row.error();
    if (!*row) return std::optional<std::uint64_t>();
    size = use.ColU64(0);
  }
  {
    Use use(impl_->delete_message);
    use.Int(1, seq);
    RHIZOME_TRY(use.Run());
  }
  if (in_transaction()) {
    // The counter columns follow at FlushStaged(): one UPDATE per queue and
    // commit instead of one per ACK.
    auto& q = impl_->staged[queue_row];
    ++q.deleted_count;
    q.deleted_bytes += size;
    return std::optional<std::uint64_t>(size);
  }
  Use use(impl_->queue_sub);
  use.Int(1, queue_row).U64(2, size);
  RHIZOME_TRY(use.Run());
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
  // Staged messages first (only a very short TTL expires them this soon).
  Impl& im = *impl_;
  for (auto q = im.staged.begin(); q != im.staged.end() && counts.messages < max_rows;) {
    auto& by_seq = q->second.by_seq;
    for (auto m = by_seq.begin(); m != by_seq.end() && counts.messages < max_rows;) {
      if (m->second.expires_at > now) {
        ++m;
        continue;
      }
      ++counts.messages;
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

std::uint64_t RelayStore::staged_message_count() const { return impl_->staged_count; }

Status RelayStore::CheckpointForTest() {
  std::unique_lock<std::mutex> lock(impl_->mu);
  const std::uint64_t target = impl_->ckpts_done + 1;
  impl_->ckpt_requested = true;
  impl_->cv.notify_one();
  impl_->done_cv.wait(lock, [&] { return impl_->ckpts_done >= target || impl_->ckpt_stop; });
  return {};
}

}  // namespace rhizome::relay
