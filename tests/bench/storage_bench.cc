// SQLCipher against plain SQLite (issue 2 §4): inserting 1 KiB rows, one row
// per transaction and 100 rows per transaction.
//
// This one source is compiled into two binaries (tests/bench/CMakeLists.txt):
//   storage_bench_sqlcipher  RHIZOME_BENCH_SQLCIPHER=1, links libsqlcipher,
//                            keyed with a random 256-bit raw key as profiles are
//                            (PRAGMA key = "x'...'", DESIGN §12);
//   storage_bench_sqlite     RHIZOME_BENCH_SQLCIPHER=0, links Debian's libsqlite3.
// SECURITY: the two libraries export the same symbols; no binary links both.
// At start-up each binary checks that `PRAGMA cipher_version` answers exactly
// when it should, so a mislinked build stops instead of printing wrong figures.
//
// Both use the pragmas of a Rhizome profile (storage/src/database.cc):
// journal_mode=DELETE, synchronous=FULL, secure_delete=ON, temp_store=MEMORY.
// The second argument of each benchmark selects that profile mode (0) or
// journal_mode=WAL with synchronous=NORMAL (1), for comparison. The database
// lives in a fresh directory under $TMPDIR (or /tmp); it is removed at exit.
#include <benchmark/benchmark.h>
#include <sodium.h>
#include <stdlib.h>

#if RHIZOME_BENCH_SQLCIPHER
#include <sqlcipher/sqlite3.h>
#else
#include <sqlite3.h>
#endif

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "rhizome/crypto/bytes.h"
#include "rhizome/crypto/init.h"

namespace {

constexpr bool kSqlCipher = RHIZOME_BENCH_SQLCIPHER != 0;
constexpr int kRowBytes = 1024;

std::filesystem::path g_dir;  // the benchmark's temporary directory
int g_db_counter = 0;

[[noreturn]] void Die(const std::string& what, sqlite3* db = nullptr) {
  std::fprintf(stderr, "storage_bench: %s%s%s\n", what.c_str(), db ? ": " : "",
               db ? sqlite3_errmsg(db) : "");
  std::exit(1);
}

void Exec(sqlite3* db, const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = "statement failed: " + sql + ": " + (err ? err : "?");
    sqlite3_free(err);
    Die(msg);
  }
}

// First column of the first row as text; "" when there is no row.
std::string QueryText(sqlite3* db, const char* sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) != SQLITE_OK) Die(sql, db);
  std::string out;
  if (sqlite3_step(stmt) == SQLITE_ROW) {
    const unsigned char* t = sqlite3_column_text(stmt, 0);
    if (t != nullptr) out = reinterpret_cast<const char*>(t);
  }
  sqlite3_finalize(stmt);
  return out;
}

struct Mode {
  const char* journal_mode;
  const char* synchronous;
};
constexpr Mode kModes[] = {{"DELETE", "FULL"}, {"WAL", "NORMAL"}};

// Opens a new database file, keys it (SQLCipher), applies the pragmas and
// creates the table. Aborts the program on any failure.
sqlite3* OpenFresh(const Mode& mode) {
  const std::string path = (g_dir / ("bench-" + std::to_string(g_db_counter++) + ".db")).string();
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK) {
    Die("cannot open " + path, db);
  }
  if (kSqlCipher) {
    // A random 256-bit raw key, bypassing SQLCipher 3's PBKDF2 (DESIGN §12).
    rhizome::ByteArray<32> key;
    randombytes_buf(key.data(), key.size());
    std::string pragma = "PRAGMA key = \"x'" + rhizome::ToHex(key) + "'\"";
    sodium_memzero(key.data(), key.size());
    Exec(db, pragma);
    sodium_memzero(pragma.data(), pragma.size());
  }
  // SECURITY: plain SQLite ignores PRAGMA key and would write cleartext; make
  // sure this binary got the library it was built for.
  const std::string cipher_version = QueryText(db, "PRAGMA cipher_version");
  if (kSqlCipher && cipher_version.empty()) Die("built for SQLCipher but linked to plain SQLite");
  if (!kSqlCipher && !cipher_version.empty()) Die("built for SQLite but linked to SQLCipher");

  Exec(db, std::string("PRAGMA journal_mode = ") + mode.journal_mode);
  Exec(db, std::string("PRAGMA synchronous = ") + mode.synchronous);
  Exec(db, "PRAGMA secure_delete = ON");
  Exec(db, "PRAGMA temp_store = MEMORY");
  Exec(db, "CREATE TABLE rows (id INTEGER PRIMARY KEY, body BLOB NOT NULL)");
  return db;
}

// args: {rows per transaction, mode index}
void BM_Insert1KiBRows(benchmark::State& state) {
  const int rows_per_txn = static_cast<int>(state.range(0));
  const Mode& mode = kModes[state.range(1)];
  sqlite3* db = OpenFresh(mode);
  state.SetLabel(std::string(kSqlCipher ? "sqlcipher" : "sqlite") + " journal=" +
                 QueryText(db, "PRAGMA journal_mode") + " synchronous=" + mode.synchronous);

  std::vector<unsigned char> body(kRowBytes);
  randombytes_buf(body.data(), body.size());
  sqlite3_stmt* insert = nullptr;
  if (sqlite3_prepare_v2(db, "INSERT INTO rows (body) VALUES (?1)", -1, &insert, nullptr) !=
      SQLITE_OK) {
    Die("prepare", db);
  }
  for (auto _ : state) {
    Exec(db, "BEGIN IMMEDIATE");
    for (int i = 0; i < rows_per_txn; ++i) {
      body[0] = static_cast<unsigned char>(i);  // rows differ
      sqlite3_bind_blob(insert, 1, body.data(), kRowBytes, SQLITE_STATIC);
      if (sqlite3_step(insert) != SQLITE_DONE) Die("insert", db);
      sqlite3_reset(insert);
    }
    Exec(db, "COMMIT");
  }
  sqlite3_finalize(insert);
  state.counters["rows_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * rows_per_txn,
                         benchmark::Counter::kIsRate);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * rows_per_txn * kRowBytes);
  if (sqlite3_close(db) != SQLITE_OK) Die("close");
}
BENCHMARK(BM_Insert1KiBRows)
    ->ArgNames({"rows_per_txn", "wal"})
    ->Args({1, 0})
    ->Args({100, 0})
    ->Args({1, 1})
    ->Args({100, 1})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();  // fsync waits are the cost being measured

}  // namespace

int main(int argc, char** argv) {
  if (!rhizome::crypto::Init().ok()) {
    std::fprintf(stderr, "storage_bench: libsodium failed to initialise\n");
    return 1;
  }
  std::string templ = (std::filesystem::temp_directory_path() / "rhizome-bench-XXXXXX").string();
  if (mkdtemp(templ.data()) == nullptr) {
    std::perror("storage_bench: mkdtemp");
    return 1;
  }
  g_dir = templ;

  // Describe what is measured in the output header.
  {
    sqlite3* probe = nullptr;
    if (sqlite3_open(":memory:", &probe) != SQLITE_OK) Die("cannot open :memory:");
    const std::string cipher = QueryText(probe, "PRAGMA cipher_version");
    sqlite3_close(probe);
    benchmark::AddCustomContext("library", kSqlCipher ? "SQLCipher" : "SQLite");
    benchmark::AddCustomContext("sqlite_version", sqlite3_libversion());
    benchmark::AddCustomContext("cipher_version", cipher.empty() ? "(none)" : cipher);
    sqlite3* db = OpenFresh(kModes[0]);
    benchmark::AddCustomContext("page_size", QueryText(db, "PRAGMA page_size"));
    if (kSqlCipher) {
      benchmark::AddCustomContext("cipher_page_size", QueryText(db, "PRAGMA cipher_page_size"));
    }
    sqlite3_close(db);
    benchmark::AddCustomContext("pragmas", "secure_delete=ON temp_store=MEMORY; wal=0: "
                                           "journal_mode=DELETE synchronous=FULL (profile); "
                                           "wal=1: journal_mode=WAL synchronous=NORMAL");
    benchmark::AddCustomContext("row", "1024-byte random BLOB, INTEGER PRIMARY KEY");
    benchmark::AddCustomContext("db_dir", g_dir.string());
  }

  benchmark::Initialize(&argc, argv);
  int rc = 0;
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
    rc = 1;
  } else {
    benchmark::RunSpecifiedBenchmarks();
  }
  benchmark::Shutdown();
  std::error_code ec;
  std::filesystem::remove_all(g_dir, ec);
  return rc;
}
