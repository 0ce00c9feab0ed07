// Private to the storage module: the SQLCipher connection behind Database, and
// the steps that open and key it (DESIGN §12).
//
// Opening a profile database is split in steps so Profile::Open can try more
// than one key file (a passphrase change interrupted by a crash leaves two):
//   OpenKeyedConnection()  open the file, apply the raw key, insist on SQLCipher,
//                          probe; tells a wrong key (kKeyMismatch) from damage
//   ConfigureConnection()  secure_delete, journal, foreign keys, temp store
//   CheckIntegrity()       PRAGMA quick_check: every page decrypts and verifies
// Thread safety: as Database.
#pragma once

#include <sqlcipher/sqlite3.h>

#include <filesystem>
#include <memory>

#include "rhizome/crypto/result.h"
#include "rhizome/crypto/secret.h"
#include "rhizome/storage/database.h"

namespace rhizome::storage {

// A SQLCipher database key: 32 random bytes, applied as a raw key.
inline constexpr std::size_t kDatabaseKeyBytes = 32;
// How long a statement waits for a lock held by another connection.
inline constexpr int kBusyTimeoutMs = 5000;

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
  Connection conn;
};

// The one door between Database's private parts and the rest of the module.
struct DatabaseAccess {
  static Database Adopt(Connection conn);
  static sqlite3* Handle(const Database& db);
};

// Maps an SQLite result code to a static error (never SQLite's message text,
// which may quote SQL or data).
Error SqliteError(int rc);

// Builds `PRAGMA <verb> = "x'<64 hex>'"` NUL-terminated in wiped memory.
// `verb` is "key" or "rekey". SECURITY: the hex key must never sit in an
// ordinary std::string (not wiped) or reach a log.
crypto::SecretBytes RawKeyPragma(std::string_view verb, const crypto::SecretBytes& key);

// The probe's verdict when the key does not decrypt page 1. Its code is used
// for nothing else inside this module; Profile::Open turns it into
// kWrongPassphrase or kCorrupt depending on what else it tried.
inline constexpr Error kKeyMismatch{Errc::kAuthenticationFailed,
                                    "database key does not match the database"};

// Opens `path` (which must exist unless `create`), applies `key` as a raw key,
// checks `PRAGMA cipher_version` answers and probes `sqlite_master`.
// Errors: kKeyMismatch (code kAuthenticationFailed) if the key does not decrypt the
// database (or page 1 is damaged: SQLCipher cannot tell them apart);
// kUnsupported if the library is not SQLCipher; kCorrupt if the database is
// malformed; kIo; kNotFound if the file is missing and !create.
Result<Connection> OpenKeyedConnection(const std::filesystem::path& path,
                                       const crypto::SecretBytes& key, bool create);

// secure_delete = ON, journal_mode = DELETE, synchronous = FULL,
// foreign_keys = ON, temp_store = MEMORY; each verified.
// Errors: kUnsupported if a setting does not take; kIo; kCorrupt.
Status ConfigureConnection(sqlite3* db);

// PRAGMA quick_check must answer exactly "ok". Errors: kCorrupt; kIo.
Status CheckIntegrity(sqlite3* db);

// Runs a statement expected to answer one text or integer row.
Result<std::int64_t> QueryInt(sqlite3* db, const char* sql);

}  // namespace rhizome::storage
