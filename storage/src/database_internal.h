// Private to the storage module: the SQLCipher connection behind Database, and
// the steps that open and key it (DESIGN §12).
//
// Opening a profile database is split in steps so Profile::Open can try more
// than one key file (a passphrase change interrupted by a crash leaves two):
//   OpenKeyedConnection()  open the file, apply the raw key, insist on SQLCipher,
//                          probe; tells a wrong key (kKeyMismatch) from damage
//   ConfigureConnection()  secure_delete, journal, synchronous, foreign keys,
//                          temp store
//   CheckIntegrity()       PRAGMA quick_check: every page decrypts and verifies
// Thread safety: as Database.
#pragma once

// sqlite3_key_v2 / sqlite3_rekey_v2 are declared only with SQLITE_HAS_CODEC
// (Debian's libsqlcipher is built with it and exports them). Include this
// header before any other include of <sqlcipher/sqlite3.h> in a file that needs
// them.
#ifndef SQLITE_HAS_CODEC
#define SQLITE_HAS_CODEC 1
#endif
#include <sqlcipher/sqlite3.h>

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string_view>

#include "rhizome/crypto/result.h"
#include "rhizome/crypto/secret.h"
#include "rhizome/storage/database.h"

namespace rhizome::storage {

// A SQLCipher database key: 32 random bytes, applied as a raw key.
inline constexpr std::size_t kDatabaseKeyBytes = 32;
// How long a statement waits for a lock held by another connection.
inline constexpr int kBusyTimeoutMs = 5000;
// `PRAGMA synchronous` answers 3 for EXTRA (SQLite 3.12 and later).
inline constexpr int kSynchronousExtra = 3;

// Owns one sqlite3 connection; closes it on destruction.
class Connection {
 public:
  Connection() = default;
  explicit Connection(sqlite3* db) : db_(db) {}
  ~Connection();
  Connection(Connection&& other) noexcept : db_(other.Release()) {}
  Connection& operator=(Connection&& other) noexcept;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  sqlite3* get() const { return db_; }
  sqlite3* Release() {
    sqlite3* db = db_;
    db_ = nullptr;
    return db;
  }

 private:
  sqlite3* db_ = nullptr;
};

struct Database::Impl {
  Connection conn;  // null once closed (see DatabaseAccess::Closed)
};

// The one door between Database's private parts and the rest of the module.
struct DatabaseAccess {
  static Database Adopt(Connection conn);
  // A Database without a connection: every call on it fails with kIo
  // ("profile database is closed"); LastInsertRowId() and Changes() answer 0.
  // Assigning it over a Database closes that Database's connection.
  static Database Closed();
  // nullptr for a closed (or moved-from) Database.
  static sqlite3* Handle(const Database& db);
};

// Maps an SQLite result code to a static error (never SQLite's message text,
// which may quote SQL or data).
Error SqliteError(int rc);

// Builds SQLCipher's raw-key string `x'<64 hex digits>'` (kRawKeySpecBytes
// bytes, then a NUL) in wiped memory. SECURITY: the hex key must never sit in
// an ordinary std::string or in SQL text (SQLite's parser copies statement
// text into memory it does not wipe), nor reach a log.
inline constexpr std::size_t kRawKeySpecBytes = 2 + 2 * kDatabaseKeyBytes + 1;
crypto::SecretBytes RawKeySpec(const crypto::SecretBytes& key);

// sqlite3_rekey_v2 on "main" with the raw-key string of `key`: every page is
// rewritten under `key` in one transaction. SECURITY: SQLCipher 3.4.1 returns
// SQLITE_OK whatever happened, and when a page write fails it rolls back but
// leaves `key` installed for writing while reads still use the old key, so
// after this call the connection must never be used again: close it and prove
// the outcome with a fresh connection (Profile::ChangePassphrase does).
// Errors: kInvalidArgument (key size), kInternal (SQLCipher refused the call).
Status RekeyConnection(sqlite3* db, const crypto::SecretBytes& key);

// PRAGMA journal_mode = `mode` ("delete" or "persist", lower case), verified.
// Must run outside a transaction. Errors: kUnsupported if it does not take;
// kIo; kInvalidArgument for another mode.
Status SetJournalMode(sqlite3* db, std::string_view mode);

// The probe's verdict when the key does not decrypt page 1. Its code is used
// for nothing else inside this module; Profile::Open turns it into
// kWrongPassphrase or kCorrupt depending on what else it tried.
inline constexpr Error kKeyMismatch{Errc::kAuthenticationFailed,
                                    "database key does not match the database"};

// Opens `path` (which must exist unless `create`), applies `key` as a raw key
// (sqlite3_key_v2 with RawKeySpec: the same key a `PRAGMA key = "x'..'"` gives),
// checks `PRAGMA cipher_version` answers and probes `sqlite_master`. The probe
// is the first read: if a hot journal exists (a crash mid-transaction) SQLite
// rolls it back there, whatever the key (the journal's pages are copied back
// as stored, without decrypting them).
// Errors: kKeyMismatch (code kAuthenticationFailed) if the key does not decrypt the
// database (or page 1 is damaged: SQLCipher cannot tell them apart);
// kUnsupported if the library is not SQLCipher; kCorrupt if the database is
// malformed; kIo; kNotFound if the file is missing and !create.
Result<Connection> OpenKeyedConnection(const std::filesystem::path& path,
                                       const crypto::SecretBytes& key, bool create);

// secure_delete = ON, journal_mode = DELETE, synchronous = EXTRA,
// foreign_keys = ON, temp_store = MEMORY; each verified.
// Errors: kUnsupported if a setting does not take; kIo; kCorrupt.
Status ConfigureConnection(sqlite3* db);

// PRAGMA quick_check must answer exactly "ok". Errors: kCorrupt; kIo.
Status CheckIntegrity(sqlite3* db);

// Runs a statement expected to answer one text or integer row.
Result<std::int64_t> QueryInt(sqlite3* db, const char* sql);

}  // namespace rhizome::storage
