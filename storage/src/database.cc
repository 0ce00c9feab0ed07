#include "rhizome/storage/database.h"

#include <sodium.h>

#include <climits>
#include <cstring>
#include <utility>

#include "database_internal.h"

namespace rhizome::storage {

// ---------------------------------------------------------------------------
// Connection and helpers

Connection::~Connection() {
  // close_v2: a statement leaked past its Database turns the connection into a
  // zombie that closes when the statement goes, instead of failing here.
  if (db_ != nullptr) sqlite3_close_v2(db_);
}

Connection& Connection::operator=(Connection&& other) noexcept {
  if (this != &other) {
    if (db_ != nullptr) sqlite3_close_v2(db_);
    db_ = other.Release();
  }
  return *this;
}

Database DatabaseAccess::Adopt(Connection conn) {
  auto impl = std::make_unique<Database::Impl>();
  impl->conn = std::move(conn);
  return Database(std::move(impl));
}

Database DatabaseAccess::Closed() { return Adopt(Connection()); }

sqlite3* DatabaseAccess::Handle(const Database& db) {
  return db.impl_ ? db.impl_->conn.get() : nullptr;
}

Error SqliteError(int rc) {
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
      if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE) {
        return Error{Errc::kAlreadyExists, "a row with this key already exists"};
      }
      return Error{Errc::kInvalidArgument, "database constraint violated"};
    case SQLITE_CORRUPT:
      return Error{Errc::kCorrupt, "profile database is damaged"};
    case SQLITE_NOTADB:
      return Error{Errc::kCorrupt, "profile database is damaged (a page failed to decrypt)"};
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Error{Errc::kIo, "profile database is busy (in use by another process?)"};
    case SQLITE_FULL:
      return Error{Errc::kIo, "disk full while writing the profile database"};
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return Error{Errc::kIo, "profile database is not writable"};
    case SQLITE_CANTOPEN:
      return Error{Errc::kIo, "cannot open the profile database file"};
    case SQLITE_IOERR:
    case SQLITE_PROTOCOL:
      return Error{Errc::kIo, "I/O error on the profile database"};
    case SQLITE_TOOBIG:
    case SQLITE_RANGE:
    case SQLITE_MISMATCH:
      return Error{Errc::kMalformed, "value does not fit the statement"};
    case SQLITE_NOMEM:
      return Error{Errc::kInternal, "out of memory in the database"};
    default:
      return Error{Errc::kInternal, "database error (bad SQL or misuse)"};
  }
}

crypto::SecretBytes RawKeySpec(const crypto::SecretBytes& key) {
  // x ' <hex> ' NUL, assembled in place in wiped memory.
  crypto::SecretBytes spec(kRawKeySpecBytes + 1);
  if (key.size() != kDatabaseKeyBytes) return spec;  // callers check the size first
  auto out = spec.expose_mut();
  out[0] = 'x';
  out[1] = '\'';
  // sodium_bin2hex is constant-time; it writes 64 digits and a NUL, which the
  // closing quote then replaces.
  sodium_bin2hex(reinterpret_cast<char*>(out.data() + 2), 2 * kDatabaseKeyBytes + 1,
                 key.expose().data(), key.size());
  out[kRawKeySpecBytes - 1] = '\'';
  out[kRawKeySpecBytes] = 0;
  return spec;
}

Status RekeyConnection(sqlite3* db, const crypto::SecretBytes& key) {
  if (key.size() != kDatabaseKeyBytes) {
    return Error{Errc::kInvalidArgument, "database key must be 32 bytes"};
  }
  const crypto::SecretBytes spec = RawKeySpec(key);
  if (sqlite3_rekey_v2(db, "main", spec.expose().data(), static_cast<int>(kRawKeySpecBytes)) !=
      SQLITE_OK) {
    return Error{Errc::kInternal, "SQLCipher refused the rekey"};
  }
  return {};
}

namespace {

// Steps a prepared statement that answers at most one row; returns the first
// column of the first row as text (empty if no row). Used for PRAGMAs.
Result<std::string> QueryText(sqlite3* db, const char* sql, bool* had_row = nullptr) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return SqliteError(rc);
  }
  std::string value;
  bool row = false;
  rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW) {
    row = true;
    const unsigned char* text = sqlite3_column_text(stmt, 0);
    if (text != nullptr) {
      value.assign(reinterpret_cast<const char*>(text),
                   static_cast<std::size_t>(sqlite3_column_bytes(stmt, 0)));
    }
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    }
  }
  sqlite3_finalize(stmt);
  if (rc != SQLITE_DONE) return SqliteError(rc);
  if (had_row != nullptr) *had_row = row;
  return value;
}

}  // namespace

Status SetJournalMode(sqlite3* db, std::string_view mode) {
  const char* sql = nullptr;
  if (mode == "delete") {
    sql = "PRAGMA journal_mode = DELETE";
  } else if (mode == "persist") {
    sql = "PRAGMA journal_mode = PERSIST";
  } else {
    return Error{Errc::kInvalidArgument, "unexpected journal mode"};
  }
  auto answer = QueryText(db, sql);
  if (!answer) return answer.error();
  if (*answer != mode) return Error{Errc::kUnsupported, "journal mode could not be set"};
  return {};
}

Result<std::int64_t> QueryInt(sqlite3* db, const char* sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return SqliteError(rc);
  }
  rc = sqlite3_step(stmt);
  std::int64_t value = 0;
  bool row = rc == SQLITE_ROW;
  if (row) {
    value = sqlite3_column_int64(stmt, 0);
    rc = sqlite3_step(stmt);
  }
  sqlite3_finalize(stmt);
  if (rc != SQLITE_DONE) return SqliteError(rc);
  if (!row) return Error{Errc::kInternal, "query returned no row"};
  return value;
}

Result<Connection> OpenKeyedConnection(const std::filesystem::path& path,
                                       const crypto::SecretBytes& key, bool create) {
  if (key.size() != kDatabaseKeyBytes) {
    return Error{Errc::kInvalidArgument, "database key must be 32 bytes"};
  }
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_PRIVATECACHE;
  if (create) flags |= SQLITE_OPEN_CREATE;
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  Connection conn(raw);  // closes on every path below, even when open failed
  if (rc != SQLITE_OK) {
    if (!create && (rc & 0xff) == SQLITE_CANTOPEN) {
      return Error{Errc::kNotFound, "profile database file is missing"};
    }
    return SqliteError(rc);
  }
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, kBusyTimeoutMs);

  {
    // SECURITY: the key goes in right after open, before anything reads the
    // file, through the API rather than `PRAGMA key` SQL text (which SQLite's
    // parser would copy into memory it never wipes). SQLCipher reads the
    // `x'<hex>'` form as a raw key, exactly as it does for the pragma, so
    // profiles keyed either way open either way.
    const crypto::SecretBytes spec = RawKeySpec(key);
    rc = sqlite3_key_v2(raw, "main", spec.expose().data(), static_cast<int>(kRawKeySpecBytes));
  }
  if (rc != SQLITE_OK) return SqliteError(rc);

  // SECURITY: a plain SQLite accepts `PRAGMA key` silently and would write
  // cleartext. SQLCipher answers cipher_version; plain SQLite returns no row.
  bool had_row = false;
  auto version = QueryText(raw, "PRAGMA cipher_version", &had_row);
  if (!version) return version.error();
  if (!had_row || version->empty()) {
    return Error{Errc::kUnsupported, "SQLite without SQLCipher would write cleartext"};
  }

  // `PRAGMA key` always succeeds; the first read of page 1 proves the key.
  sqlite3_stmt* probe = nullptr;
  rc = sqlite3_prepare_v2(raw, "SELECT count(*) FROM sqlite_master", -1, &probe, nullptr);
  if (rc == SQLITE_OK) {
    rc = sqlite3_step(probe);
    if (rc == SQLITE_ROW) rc = sqlite3_step(probe);
  }
  sqlite3_finalize(probe);
  // NOTADB here means "wrong key" (or a damaged page 1, which SQLCipher cannot
  // tell apart); elsewhere SqliteError calls it damage.
  if ((rc & 0xff) == SQLITE_NOTADB) return kKeyMismatch;
  if (rc != SQLITE_DONE) return SqliteError(rc);
  return conn;
}

Status ConfigureConnection(sqlite3* db) {
  // SECURITY: deleted content is overwritten with zeros inside the database.
  auto secure_delete = QueryInt(db, "PRAGMA secure_delete = ON");
  if (!secure_delete) return secure_delete.error();
  if (*secure_delete != 1) return Error{Errc::kUnsupported, "secure_delete could not be enabled"};

  // Rollback journal (see docs/protocol/profile-key-file.md, "Journal mode"):
  // a rekey is one ordinary atomic transaction and no -wal/-shm files exist.
  // A failed open with the wrong key writes nothing of its own; the one
  // exception is SQLite rolling back a hot journal (left by a crash
  // mid-transaction) at the first read, which it does whatever the key.
  RHIZOME_TRY(SetJournalMode(db, "delete"));

  // SECURITY (durability): EXTRA = FULL (journal and database fsynced before
  // a commit returns) plus an fsync of the directory once the journal is
  // deleted. Under FULL a commit ends with an unlink nobody synced: after a
  // power loss the journal could come back and roll the commit back, possibly
  // a rekey whose old key file has since been overwritten.
  if (int rc = sqlite3_exec(db, "PRAGMA synchronous = EXTRA", nullptr, nullptr, nullptr);
      rc != SQLITE_OK) {
    return SqliteError(rc);
  }
  auto synchronous = QueryInt(db, "PRAGMA synchronous");
  if (!synchronous) return synchronous.error();
  if (*synchronous != kSynchronousExtra) {
    return Error{Errc::kUnsupported, "synchronous=EXTRA could not be set"};
  }

  // SECURITY: temporary tables and sort spills stay in memory, never in a
  // temp file outside the profile.
  if (int rc = sqlite3_exec(db, "PRAGMA temp_store = MEMORY", nullptr, nullptr, nullptr);
      rc != SQLITE_OK) {
    return SqliteError(rc);
  }
  auto temp_store = QueryInt(db, "PRAGMA temp_store");
  if (!temp_store) return temp_store.error();
  if (*temp_store != 2) return Error{Errc::kUnsupported, "temp_store=MEMORY could not be set"};

  if (int rc = sqlite3_exec(db, "PRAGMA foreign_keys = ON", nullptr, nullptr, nullptr);
      rc != SQLITE_OK) {
    return SqliteError(rc);
  }
  auto foreign_keys = QueryInt(db, "PRAGMA foreign_keys");
  if (!foreign_keys) return foreign_keys.error();
  if (*foreign_keys != 1) return Error{Errc::kUnsupported, "foreign keys could not be enabled"};
  return {};
}

Status CheckIntegrity(sqlite3* db) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return SqliteError(rc);
  }
  int rows = 0;
  bool ok = false;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    ++rows;
    const unsigned char* text = sqlite3_column_text(stmt, 0);
    ok = text != nullptr && std::strcmp(reinterpret_cast<const char*>(text), "ok") == 0;
  }
  sqlite3_finalize(stmt);
  if (rc != SQLITE_DONE) return SqliteError(rc);
  if (rows != 1 || !ok) {
    return Error{Errc::kCorrupt, "profile database is damaged (integrity check failed)"};
  }
  return {};
}

namespace {

// What a closed Database answers (see DatabaseAccess::Closed):
// Profile::ChangePassphrase closes the connection when a failed rekey leaves
// a database it cannot open again with either key.
constexpr Error kClosedError{Errc::kIo, "profile database is closed; reopen the profile"};

}  // namespace

// ---------------------------------------------------------------------------
// Statement

struct Statement::Impl {
  sqlite3_stmt* stmt = nullptr;
  bool bind_failed = false;
  ~Impl() {
    if (stmt != nullptr) sqlite3_finalize(stmt);
  }
};

Statement::Statement(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Statement::Statement(Statement&&) noexcept = default;
Statement& Statement::operator=(Statement&&) noexcept = default;
Statement::~Statement() = default;

Statement& Statement::Bind(int index, std::int64_t value) {
  if (sqlite3_bind_int64(impl_->stmt, index, value) != SQLITE_OK) impl_->bind_failed = true;
  return *this;
}

Statement& Statement::Bind(int index, ByteSpan blob) {
  if (blob.size() > static_cast<std::size_t>(INT_MAX)) {
    impl_->bind_failed = true;
    return *this;
  }
  // A zero-length blob is still a blob, not NULL: give SQLite a valid pointer.
  static const std::uint8_t kEmpty = 0;
  const void* data = blob.empty() ? &kEmpty : blob.data();
  if (sqlite3_bind_blob(impl_->stmt, index, data, static_cast<int>(blob.size()),
                        SQLITE_TRANSIENT) != SQLITE_OK) {
    impl_->bind_failed = true;
  }
  return *this;
}

Statement& Statement::Bind(int index, std::string_view text) {
  if (text.size() > static_cast<std::size_t>(INT_MAX)) {
    impl_->bind_failed = true;
    return *this;
  }
  const char* data = text.empty() ? "" : text.data();
  if (sqlite3_bind_text(impl_->stmt, index, data, static_cast<int>(text.size()),
                        SQLITE_TRANSIENT) != SQLITE_OK) {
    impl_->bind_failed = true;
  }
  return *this;
}

Statement& Statement::BindNull(int index) {
  if (sqlite3_bind_null(impl_->stmt, index) != SQLITE_OK) impl_->bind_failed = true;
  return *this;
}

Result<bool> Statement::Step() {
  if (impl_->bind_failed) {
    return Error{Errc::kMalformed, "a statement parameter could not be bound"};
  }
  int rc = sqlite3_step(impl_->stmt);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return SqliteError(sqlite3_extended_errcode(sqlite3_db_handle(impl_->stmt)));
}

Status Statement::Run() {
  auto stepped = Step();
  if (!stepped) {
    Reset();
    return stepped.error();
  }
  const bool row = *stepped;
  Reset();
  if (row) return Error{Errc::kInvalidArgument, "statement returned rows; use Step()"};
  return {};
}

void Statement::Reset() {
  sqlite3_reset(impl_->stmt);
  impl_->bind_failed = false;
}

int Statement::ColumnCount() const { return sqlite3_column_count(impl_->stmt); }

bool Statement::ColumnIsNull(int col) const {
  return sqlite3_column_type(impl_->stmt, col) == SQLITE_NULL;
}

std::int64_t Statement::ColumnInt64(int col) const {
  return sqlite3_column_int64(impl_->stmt, col);
}

ByteSpan Statement::ColumnBlob(int col) const {
  // Order matters: fetch the pointer first, then the size (SQLite docs).
  const void* data = sqlite3_column_blob(impl_->stmt, col);
  int size = sqlite3_column_bytes(impl_->stmt, col);
  if (data == nullptr || size <= 0) return {};
  return {static_cast<const std::uint8_t*>(data), static_cast<std::size_t>(size)};
}

std::string_view Statement::ColumnText(int col) const {
  const unsigned char* data = sqlite3_column_text(impl_->stmt, col);
  int size = sqlite3_column_bytes(impl_->stmt, col);
  if (data == nullptr || size <= 0) return {};
  return {reinterpret_cast<const char*>(data), static_cast<std::size_t>(size)};
}

// ---------------------------------------------------------------------------
// Transaction

Transaction::Transaction(Transaction&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}

Transaction::~Transaction() {
  if (db_ == nullptr) return;
  sqlite3* db = DatabaseAccess::Handle(*db_);
  // A failed COMMIT may already have rolled back (e.g. on an I/O error).
  if (db != nullptr && sqlite3_get_autocommit(db) == 0) {
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
  }
}

Status Transaction::Commit() {
  if (db_ == nullptr) return Error{Errc::kInvalidArgument, "transaction already finished"};
  sqlite3* db = DatabaseAccess::Handle(*db_);
  if (db == nullptr) return kClosedError;
  int rc = sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return SqliteError(sqlite3_extended_errcode(db));
  db_ = nullptr;
  return {};
}

// ---------------------------------------------------------------------------
// Database

Database::Database(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Database::Database(Database&&) noexcept = default;
Database& Database::operator=(Database&&) noexcept = default;
Database::~Database() = default;

Status Database::Exec(std::string_view sql) {
  sqlite3* db = DatabaseAccess::Handle(*this);
  if (db == nullptr) return kClosedError;
  // sqlite3_exec needs a NUL-terminated string.
  std::string text(sql);
  int rc = sqlite3_exec(db, text.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return SqliteError(sqlite3_extended_errcode(db));
  return {};
}

Result<Statement> Database::Prepare(std::string_view sql) {
  if (sql.size() > static_cast<std::size_t>(INT_MAX)) {
    return Error{Errc::kInvalidArgument, "SQL text too long"};
  }
  sqlite3* db = DatabaseAccess::Handle(*this);
  if (db == nullptr) return kClosedError;
  sqlite3_stmt* stmt = nullptr;
  const char* tail = nullptr;
  int rc = sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt, &tail);
  auto impl = std::make_unique<Statement::Impl>();
  impl->stmt = stmt;  // finalized by Impl on every error path
  if (rc != SQLITE_OK) return SqliteError(sqlite3_extended_errcode(db));
  if (stmt == nullptr) return Error{Errc::kInternal, "empty SQL statement"};
  const char* end = sql.data() + sql.size();
  for (const char* p = tail; p != nullptr && p < end; ++p) {
    if (*p != ' ' && *p != '\n' && *p != '\t' && *p != '\r' && *p != ';') {
      return Error{Errc::kInternal, "Prepare() takes exactly one SQL statement"};
    }
  }
  return Statement(std::move(impl));
}

Result<Transaction> Database::Begin() {
  sqlite3* db = DatabaseAccess::Handle(*this);
  if (db == nullptr) return kClosedError;
  if (sqlite3_get_autocommit(db) == 0) {
    return Error{Errc::kInvalidArgument, "a transaction is already open"};
  }
  int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return SqliteError(sqlite3_extended_errcode(db));
  return Transaction(this);
}

Result<std::int64_t> Database::UserVersion() {
  sqlite3* db = DatabaseAccess::Handle(*this);
  if (db == nullptr) return kClosedError;
  return QueryInt(db, "PRAGMA user_version");
}

std::int64_t Database::LastInsertRowId() const {
  sqlite3* db = DatabaseAccess::Handle(*this);
  return db == nullptr ? 0 : sqlite3_last_insert_rowid(db);
}

int Database::Changes() const {
  sqlite3* db = DatabaseAccess::Handle(*this);
  return db == nullptr ? 0 : sqlite3_changes(db);
}

}  // namespace rhizome::storage
