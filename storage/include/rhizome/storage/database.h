// A thin, safe wrapper over one SQLCipher connection (no SQLite types leak).
//
// Contracts:
// - Statements and transactions borrow the Database: they must not outlive it.
// - Blob/text views returned by Statement::Column* stay valid until the next
//   Step(), Reset() or destruction of the statement.
// - SQL must suit SQLite 3.15.2 (Debian 12's SQLCipher 3.4.1): no UPSERT, no
//   window functions, no RETURNING.
// - Error messages are static: they never contain SQL text or bound values.
// - A moved-from Database, Statement or Transaction may only be destroyed or
//   assigned to.
// - Durability: every successful Commit() (or statement outside a transaction)
//   is on disk when it returns (rollback journal, synchronous=EXTRA: journal
//   and database fsynced, and the directory fsynced after the journal is
//   deleted, so a power loss cannot bring the journal back).
// - A Database can be closed under its owner: Profile::ChangePassphrase does so
//   when a failed rekey leaves a database it cannot reopen with either key.
//   Every call then fails with kIo ("profile database is closed; reopen the
//   profile"); LastInsertRowId() and Changes() answer 0.
// Thread safety: one Database per thread; not shareable.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "rhizome/crypto/bytes.h"
#include "rhizome/crypto/result.h"

namespace rhizome::storage {

class Database;
struct DatabaseAccess;

class Statement {
 public:
  Statement(Statement&&) noexcept;
  Statement& operator=(Statement&&) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  // Parameters are 1-based, as in SQLite. Blobs and text are copied by SQLite
  // (SQLITE_TRANSIENT) so the caller may wipe its buffer afterwards.
  Statement& Bind(int index, std::int64_t value);
  Statement& Bind(int index, ByteSpan blob);
  Statement& Bind(int index, std::string_view text);
  Statement& BindNull(int index);

  // Result<true> when a row is available, Result<false> when done.
  // Errors: kIo (busy, disk full, I/O) / kCorrupt (damaged database) /
  // kAlreadyExists (UNIQUE or PRIMARY KEY constraint) / kInvalidArgument (any
  // other constraint) / kMalformed (a Bind() failed: bad index or too big) /
  // kInternal (misuse, e.g. a step after an error without Reset()).
  Result<bool> Step();
  // Step() expecting no rows (INSERT, UPDATE, ...), then Reset() so the
  // statement can be bound and run again. Errors: as Step(); kInvalidArgument
  // if the statement returned a row.
  Status Run();
  // Makes the statement runnable again; bindings are kept. Clears a Bind() error.
  void Reset();

  int ColumnCount() const;
  bool ColumnIsNull(int col) const;
  std::int64_t ColumnInt64(int col) const;
  ByteSpan ColumnBlob(int col) const;
  std::string_view ColumnText(int col) const;

 private:
  friend class Database;
  struct Impl;
  explicit Statement(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// RAII transaction: rolls back on destruction unless Commit() succeeded.
// Commit() errors: kIo (busy or failing disk; the transaction stays open and is
// rolled back on destruction), kInvalidArgument if already committed.
class Transaction {
 public:
  Transaction(Transaction&&) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  ~Transaction();
  Status Commit();

 private:
  friend class Database;
  explicit Transaction(Database* db) : db_(db) {}
  Database* db_;
};

class Database {
 public:
  Database(Database&&) noexcept;
  Database& operator=(Database&&) noexcept;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  ~Database();

  // Runs one or more statements without results. Errors: as Statement::Step;
  // kInternal for an SQL error (a programming error).
  Status Exec(std::string_view sql);
  // Compiles exactly one statement. Errors: kInternal for an SQL error or
  // trailing statements; kIo / kCorrupt as Step.
  Result<Statement> Prepare(std::string_view sql);
  // BEGIN IMMEDIATE. Errors: kIo if the database is busy or failing;
  // kInvalidArgument if a transaction is already open (no nesting).
  Result<Transaction> Begin();

  Result<std::int64_t> UserVersion();
  std::int64_t LastInsertRowId() const;
  int Changes() const;

 private:
  friend class Profile;
  friend class Statement;
  friend class Transaction;
  friend struct DatabaseAccess;  // storage/src/database_internal.h
  struct Impl;
  explicit Database(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace rhizome::storage
