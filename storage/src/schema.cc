#include "schema.h"

#include <array>
#include <string>
#include <string_view>

#include "rhizome/storage/profile.h"

namespace rhizome::storage {

namespace {

// kMigrations[i] takes the schema from version i to i + 1. SQL for SQLite
// 3.15.2: no UPSERT, no RETURNING, no window functions.
constexpr std::array<std::string_view, kSchemaVersion> kMigrations = {
    // 0 -> 1: the identity (at most one row) and key/value settings.
    R"sql(
CREATE TABLE identity (
  id             INTEGER PRIMARY KEY CHECK (id = 1),
  display_name   TEXT NOT NULL,
  signing_public BLOB NOT NULL,
  signing_secret BLOB NOT NULL,
  noise_public   BLOB NOT NULL,
  noise_secret   BLOB NOT NULL,
  certificate    BLOB NOT NULL
);
CREATE TABLE settings (
  key   TEXT PRIMARY KEY,
  value BLOB
);
)sql",
    // 1 -> 2: one-to-one messaging (client/src/messenger.cc, docs/client-storage.md).
    R"sql(
CREATE TABLE relays (
  id              INTEGER PRIMARY KEY,
  address         TEXT NOT NULL UNIQUE,
  followed_serial INTEGER NOT NULL DEFAULT 0,
  added_at        INTEGER NOT NULL
);
CREATE TABLE invites (
  id             INTEGER PRIMARY KEY,
  label          TEXT NOT NULL UNIQUE,
  key_secret     BLOB NOT NULL,
  invite_secret  BLOB NOT NULL,
  fingerprint    BLOB NOT NULL,
  expires_at     INTEGER NOT NULL,
  multi_use      INTEGER NOT NULL,
  uses_left      INTEGER NOT NULL,
  created_at     INTEGER NOT NULL
);
CREATE TABLE invite_requests (
  invite_id  INTEGER NOT NULL REFERENCES invites(id) ON DELETE CASCADE,
  request_id BLOB NOT NULL,
  PRIMARY KEY (invite_id, request_id)
);
CREATE TABLE contacts (
  id             INTEGER PRIMARY KEY,
  alias          TEXT NOT NULL UNIQUE,
  alias_set      INTEGER NOT NULL DEFAULT 0,
  role           INTEGER NOT NULL,
  state          INTEGER NOT NULL,
  session        BLOB NOT NULL,
  peer_card      BLOB,
  identity_key   BLOB,
  verified       INTEGER NOT NULL DEFAULT 0,
  next_seq       INTEGER NOT NULL DEFAULT 1,
  last_sent_hash BLOB,
  expire_seconds INTEGER NOT NULL DEFAULT 0,
  created_at     INTEGER NOT NULL
);
CREATE TABLE inbound_queues (
  id               INTEGER PRIMARY KEY,
  relay_address    TEXT NOT NULL,
  recipient_id     BLOB NOT NULL,
  sender_id        BLOB NOT NULL,
  recipient_seed   BLOB NOT NULL,
  send_key         BLOB NOT NULL,
  seal_secret      BLOB NOT NULL,
  invite_id        INTEGER REFERENCES invites(id) ON DELETE CASCADE,
  contact_id       INTEGER REFERENCES contacts(id) ON DELETE CASCADE,
  reply_only       INTEGER NOT NULL DEFAULT 0,
  UNIQUE (relay_address, recipient_id),
  CHECK ((invite_id IS NULL) <> (contact_id IS NULL))
);
CREATE TABLE outbound_queues (
  id            INTEGER PRIMARY KEY,
  contact_id    INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
  relay_address TEXT NOT NULL,
  sender_id     BLOB NOT NULL,
  send_key      BLOB NOT NULL,
  seal_key      BLOB NOT NULL
);
CREATE TABLE messages (
  id           INTEGER PRIMARY KEY,
  contact_id   INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
  outgoing     INTEGER NOT NULL,
  message_id   BLOB NOT NULL,
  seq          INTEGER NOT NULL,
  type         INTEGER NOT NULL,
  body         BLOB NOT NULL,
  sent_at_ms   INTEGER NOT NULL,
  stored_at    INTEGER NOT NULL,
  state        INTEGER NOT NULL,
  expires_at   INTEGER,
  UNIQUE (contact_id, outgoing, message_id)
);
CREATE INDEX messages_by_contact ON messages (contact_id, outgoing, seq);
CREATE TABLE outbox (
  id              INTEGER PRIMARY KEY,
  contact_id      INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
  message_row     INTEGER REFERENCES messages(id) ON DELETE CASCADE,
  ciphertext      BLOB NOT NULL,
  path_relay      TEXT,
  path_sender_id  BLOB,
  path_send_key   BLOB,
  path_seal_key   BLOB,
  needs_receipt   INTEGER NOT NULL,
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  created_at      INTEGER NOT NULL
);
CREATE TABLE seen (
  contact_id INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
  hash       BLOB NOT NULL,
  message_id BLOB,
  seen_at    INTEGER NOT NULL,
  receipt_at INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (contact_id, hash)
);
CREATE TABLE retired_queues (
  id             INTEGER PRIMARY KEY,
  relay_address  TEXT NOT NULL,
  recipient_id   BLOB NOT NULL,
  recipient_seed BLOB NOT NULL,
  retired_at     INTEGER NOT NULL
);
CREATE TABLE held (
  id          INTEGER PRIMARY KEY,
  contact_id  INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
  hash        BLOB NOT NULL,
  payload     BLOB NOT NULL,
  received_at INTEGER NOT NULL,
  UNIQUE (contact_id, hash)
);
CREATE INDEX outbox_by_message ON outbox (message_row);
CREATE INDEX outbox_by_contact ON outbox (contact_id, next_attempt_at);
CREATE INDEX inbound_by_contact ON inbound_queues (contact_id);
CREATE INDEX inbound_by_invite ON inbound_queues (invite_id);
CREATE INDEX outbound_by_contact ON outbound_queues (contact_id);
CREATE INDEX messages_by_expiry ON messages (expires_at);
)sql",
    // 2 -> 3: direct links (Noise XK between daemons; docs/client-storage.md).
    // invites.direct / contacts.direct: our direct address goes into the
    // invite and into our card for that contact. outbox.direct_pending: the
    // last attempt went over a direct link and its ack has not come;
    // outbox.direct_delivery: that post's delivery id (an ack must match it:
    // row ids are reused once the newest row is deleted).
    // Card updates inside a session: contacts.peer_card_seq (the envelope seq
    // of the card in force) and contacts.key_refused_at (when a card with
    // another identity key was refused; 0 = never).
    // The address we advertise is the setting 'direct_address'.
    R"sql(
ALTER TABLE invites ADD COLUMN direct INTEGER NOT NULL DEFAULT 0;
ALTER TABLE contacts ADD COLUMN direct INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN direct_pending INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN direct_delivery BLOB;
ALTER TABLE contacts ADD COLUMN peer_card_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE contacts ADD COLUMN key_refused_at INTEGER NOT NULL DEFAULT 0;
)sql",
};

}  // namespace

Status MigrateSchema(Database& db, std::int64_t from) {
  if (from < 0 || from > kSchemaVersion) {
    return Error{Errc::kInvalidArgument, "schema version out of range"};
  }
  for (std::int64_t v = from; v < kSchemaVersion; ++v) {
    auto txn = db.Begin();
    if (!txn) return txn.error();
    RHIZOME_TRY(db.Exec(kMigrations[static_cast<std::size_t>(v)]));
    RHIZOME_TRY(db.Exec("PRAGMA user_version = " + std::to_string(v + 1)));
    RHIZOME_TRY(txn->Commit());
  }
  return {};
}

Status CheckAndMigrateSchema(Database& db) {
  auto version = db.UserVersion();
  if (!version) return version.error();
  if (*version <= 0) {
    return Error{Errc::kCorrupt, "profile database is empty or has no schema"};
  }
  if (*version > kSchemaVersion) {
    return Error{Errc::kUnsupported, "profile was written by a newer version of Rhizome"};
  }
  return MigrateSchema(db, *version);
}

}  // namespace rhizome::storage
