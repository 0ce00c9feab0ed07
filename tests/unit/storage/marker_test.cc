// The marker test (issue 2 §3): known markers written into a profile must not
// appear in any byte of any file of the profile directory, while the same
// data written by the same code into an unencrypted control database is
// found by the same scan (so the scan is real).
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "database_internal.h"
#include "key_file.h"
#include "rhizome/crypto/init.h"
#include "rhizome/crypto/random.h"
#include "rhizome/protocol/identity.h"
#include "rhizome/storage/identity_store.h"
#include "rhizome/storage/profile.h"
#include "schema.h"
#include "storage_test_util.h"
#include "test_support.h"

namespace rhizome::storage {
namespace {

namespace fs = std::filesystem;
using testing::Contains;
using testing::FastParams;
using testing::SnapshotDir;
using testing::Upper;

constexpr std::string_view kPassphrase = "marker passphrase 9d1e-kestrel";
constexpr std::string_view kDisplayName = "Zenobia Quartermaine-Okafor";
constexpr std::string_view kMarkerKey = "RHIZOME-SETTINGS-KEY-MARKER-41c7";

std::string LongMarker() {
  std::string s;
  for (int i = 0; s.size() < 8192; ++i) s += "RHIZOME-LONG-MARKER-" + std::to_string(i) + ";";
  return s;
}

struct Needle {
  std::string name;
  std::string bytes;
};

std::string Str(ByteSpan b) { return std::string(b.begin(), b.end()); }

// Every marker, each also in hex where it is a key (a careless store might
// hex-encode keys).
std::vector<Needle> Needles(const protocol::Identity& id, ByteSpan db_key) {
  const std::string long_marker = LongMarker();
  std::vector<Needle> n = {
      {"display name", std::string(kDisplayName)},
      {"settings key marker", std::string(kMarkerKey)},
      {"long marker (start)", long_marker.substr(0, 64)},
      {"long marker (middle)", long_marker.substr(4000, 64)},
      {"long marker (end)", long_marker.substr(long_marker.size() - 64)},
      {"passphrase", std::string(kPassphrase)},
  };
  auto add_key = [&](const std::string& name, ByteSpan key) {
    n.push_back({name, Str(key)});
    n.push_back({name + " (hex)", ToHex(key)});
    n.push_back({name + " (HEX)", Upper(ToHex(key))});
  };
  add_key("signing public key", id.signing.public_key);
  add_key("signing seed", id.signing.secret_key.expose().first(32));
  add_key("signing secret key", id.signing.secret_key.expose());
  add_key("noise public key", id.noise.public_key);
  add_key("noise secret key", id.noise.secret_key.expose());
  add_key("certificate", id.certificate);
  add_key("database key", db_key);
  return n;
}

// Which needles occur in which files of `dir`.
std::vector<std::string> Scan(const fs::path& dir, const std::vector<Needle>& needles) {
  std::vector<std::string> hits;
  for (const auto& [file, bytes] : SnapshotDir(dir)) {
    for (const auto& needle : needles) {
      if (Contains(bytes, needle.bytes)) hits.push_back(file + ": " + needle.name);
    }
  }
  return hits;
}

// Writes the markers through the given database, the way the client would.
void StoreMarkers(Database& db, const protocol::Identity& id) {
  ASSERT_OK(SaveIdentity(db, id));
  auto stmt = db.Prepare("INSERT INTO settings (key, value) VALUES (?1, ?2)");
  ASSERT_TRUE(stmt.ok());
  ASSERT_OK(stmt->Bind(1, kMarkerKey).Bind(2, AsBytes(LongMarker())).Run());
  ASSERT_OK(
      stmt->Bind(1, std::string_view("display_name_copy")).Bind(2, AsBytes(kDisplayName)).Run());
}

// Holds a write transaction open with the marker row's old pages in the
// rollback journal, scans, then rolls back.
std::vector<std::string> ScanWithJournal(Database& db, const fs::path& dir,
                                         const std::vector<Needle>& needles, bool* journal_seen) {
  auto txn = db.Begin();
  EXPECT_TRUE(txn.ok());
  EXPECT_TRUE(db.Exec("UPDATE settings SET value = x'00' WHERE key = 'display_name_copy'").ok());
  EXPECT_TRUE(db.Exec("DELETE FROM settings WHERE key = '" + std::string(kMarkerKey) + "'").ok());
  EXPECT_TRUE(db.Exec("UPDATE identity SET display_name = 'x'").ok());
  *journal_seen = fs::exists(dir / (std::string(kDatabaseFileName) + "-journal"));
  return Scan(dir, needles);
}

TEST(MarkerTest, NoProfileFileContainsAnyMarker) {
  ASSERT_TRUE(crypto::Init().ok());
  rhizome::testing::TempDir tmp;
  crypto::DeterministicRandom rng(2024);
  const fs::path dir = tmp.path() / "profile";
  auto id = protocol::GenerateIdentity(kDisplayName, rng);
  ASSERT_TRUE(id.ok());

  std::vector<std::string> journal_hits;
  bool journal_seen = false;
  {
    auto profile = Profile::Create(dir, AsBytes(kPassphrase), FastParams(), rng);
    ASSERT_TRUE(profile.ok()) << profile.error().message;
    StoreMarkers(profile->db(), *id);
  }
  // The database key, to look for it too.
  auto key_file = ParseKeyFile(AsBytes(testing::ReadAll(dir / kKeyFileName)));
  ASSERT_TRUE(key_file.ok());
  auto db_key = UnwrapDatabaseKey(*key_file, AsBytes(kPassphrase));
  ASSERT_TRUE(db_key.ok());
  const auto needles = Needles(*id, db_key->expose());

  // Reopen (as the CLI would) and scan while a transaction has a journal.
  {
    auto profile = Profile::Open(dir, AsBytes(kPassphrase));
    ASSERT_TRUE(profile.ok()) << profile.error().message;
    journal_hits = ScanWithJournal(profile->db(), dir, needles, &journal_seen);
  }
  EXPECT_TRUE(journal_seen) << "the scan should have seen a rollback journal";
  EXPECT_TRUE(journal_hits.empty()) << ::testing::PrintToString(journal_hits);

  // At rest: every file, every byte.
  const auto files = SnapshotDir(dir);
  ASSERT_TRUE(files.count(std::string(kDatabaseFileName)));
  ASSERT_TRUE(files.count(std::string(kKeyFileName)));
  EXPECT_GT(files.at(std::string(kDatabaseFileName)).size(), 8192u);  // the data is in there
  const auto hits = Scan(dir, needles);
  EXPECT_TRUE(hits.empty()) << ::testing::PrintToString(hits);

  // After a passphrase change (a rekey rewrites every page) as well.
  {
    auto profile = Profile::Open(dir, AsBytes(kPassphrase));
    ASSERT_TRUE(profile.ok());
    ASSERT_OK(profile->ChangePassphrase(AsBytes("another 5e2b passphrase"), FastParams(), rng));
  }
  auto needles_after = needles;
  needles_after.push_back({"new passphrase", "another 5e2b passphrase"});
  const auto hits_after = Scan(dir, needles_after);
  EXPECT_TRUE(hits_after.empty()) << ::testing::PrintToString(hits_after);
}

// The control: the same code path with encryption off (a connection opened
// without a key) writes the markers in the clear, and the scan finds them.
// If this test fails, the scan above proves nothing.
TEST(MarkerTest, TheScanFindsMarkersInAnUnencryptedControlDatabase) {
  ASSERT_TRUE(crypto::Init().ok());
  rhizome::testing::TempDir tmp;
  crypto::DeterministicRandom rng(2024);
  const fs::path dir = tmp.path() / "control";
  fs::create_directories(dir);
  auto id = protocol::GenerateIdentity(kDisplayName, rng);
  ASSERT_TRUE(id.ok());
  const Bytes fake_db_key(32, 0x5a);  // never written: must not be found
  const auto needles = Needles(*id, fake_db_key);

  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open_v2((dir / kDatabaseFileName).c_str(), &raw,
                            SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr),
            SQLITE_OK);
  Database db = DatabaseAccess::Adopt(Connection(raw));
  ASSERT_OK(ConfigureConnection(DatabaseAccess::Handle(db)));
  ASSERT_OK(MigrateSchema(db, 0));
  StoreMarkers(db, *id);

  bool journal_seen = false;
  const auto journal_hits = ScanWithJournal(db, dir, needles, &journal_seen);
  EXPECT_TRUE(journal_seen);
  auto found_in_journal = [&](const std::string& needle) {
    const std::string want = std::string(kDatabaseFileName) + "-journal: " + needle;
    return std::find(journal_hits.begin(), journal_hits.end(), want) != journal_hits.end();
  };
  EXPECT_TRUE(found_in_journal("display name")) << ::testing::PrintToString(journal_hits);

  const auto hits = Scan(dir, needles);
  auto found = [&](const std::string& needle) {
    const std::string want = std::string(kDatabaseFileName) + ": " + needle;
    return std::find(hits.begin(), hits.end(), want) != hits.end();
  };
  for (const char* needle :
       {"display name", "settings key marker", "long marker (start)", "long marker (middle)",
        "long marker (end)", "signing public key", "signing seed", "noise public key",
        "noise secret key", "certificate"}) {
    EXPECT_TRUE(found(needle)) << needle;
  }
  // Never written anywhere, so never found: the scan has no false positives.
  EXPECT_FALSE(found("passphrase"));
  EXPECT_FALSE(found("database key"));
}

}  // namespace
}  // namespace rhizome::storage
