// The relay's message journal: the file format (private to the relay module).
//
// RelayStore keeps the newest messages of every queue in memory and makes
// them durable by appending them to a journal file instead of inserting them
// into SQLite: an acknowledgement usually arrives while the message is still
// journaled, and then the message costs one appended record and one deletion
// record instead of three B-tree inserts and three deletes. Messages still
// journaled after a while (or above a memory bound) move into SQLite and the
// journal starts a new file. docs/relay-internals.md ("Message journal")
// gives the whole design and its crash-consistency argument; this header is
// the byte format and its reader.
//
// A journal file is a sequence of batches, one per commit:
//   u32 magic kJournalMagic | u32 body length | u32 CRC-32 of the body | body
// (little-endian). The body is a sequence of records:
//   'P' i64 queue_row, i64 seq, 16-byte message id, u64 received_at,
//       u64 expires_at, u32 blob length, blob        (a stored message)
//   'D' i64 queue_row, i64 seq                       (a deleted message)
// The CRC only finds a torn tail (a batch cut short by a crash, or never
// synced before a power loss): the file is as trusted as relay.db.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "rhizome/crypto/bytes.h"
#include "rhizome/crypto/result.h"
#include "rhizome/protocol/wire_types.h"

namespace rhizome::relay {

// Journal files in the data directory: kJournalFilePrefix, 16 lower-case hex
// digits (the file's number, growing), kJournalFileSuffix.
inline constexpr std::string_view kJournalFilePrefix = "messages-";
inline constexpr std::string_view kJournalFileSuffix = ".journal";
inline constexpr std::uint32_t kJournalMagic = 0x314a5a52;  // "RZJ1"
inline constexpr std::size_t kJournalBatchHeaderBytes = 12;
// Limits of the reader (a batch or blob above them is refused as damaged).
// A batch holds at most what one commit journals: below
// kMaxStagedMessageBytes of blobs plus the records' fixed parts.
inline constexpr std::size_t kMaxJournalBatchBytes = 64u << 20;
inline constexpr std::size_t kMaxJournalBlobBytes = 1u << 20;
// Largest journal file the reader loads (the writer starts a new file far
// below this: kJournalRotateBytes in store.h).
inline constexpr std::uint64_t kMaxJournalFileBytes = 256ull << 20;

// Records name queue rows above 0 and seqs in [1, kMaxJournalSeq] (others
// are damage: the engine counts seqs up from the highest one).
inline constexpr std::int64_t kMaxJournalSeq = std::int64_t{1} << 62;

// The fixed part of a record, without the blob.
inline constexpr std::size_t kJournalPutFixedBytes = 1 + 8 + 8 + 16 + 8 + 8 + 4;
inline constexpr std::size_t kJournalDelBytes = 1 + 8 + 8;

struct JournalPut {
  std::int64_t queue_row = 0;
  std::int64_t seq = 0;
  protocol::Id message_id{};
  std::uint64_t received_at = 0;
  std::uint64_t expires_at = 0;
  ByteSpan blob;  // points into the batch being read
};

// Builds one batch. Reused across commits (its buffer keeps its capacity).
class JournalBatch {
 public:
  JournalBatch() { Clear(); }
  void Put(const JournalPut& put);
  void Del(std::int64_t queue_row, std::int64_t seq);
  bool empty() const { return buf_.size() == kJournalBatchHeaderBytes; }
  // Fills in the header; the returned bytes stay valid until the next change.
  ByteSpan Finish();
  void Clear();

 private:
  Bytes buf_;
};

struct JournalReadResult {
  std::uint64_t valid_bytes = 0;  // the intact batches' bytes from the start
  bool torn_tail = false;         // bytes after them (a batch cut short or damaged)
};

// Reads a journal file's bytes: calls on_put / on_del for every record of
// every intact batch, in file order, and stops at the first batch that is
// incomplete, has a wrong magic, a length above kMaxJournalBatchBytes or a
// wrong CRC (a torn tail: everything from there on is ignored).
// Errors: kCorrupt "relay message journal is damaged" if an intact batch
// holds a malformed record (unknown kind, cut short, blob above
// kMaxJournalBlobBytes, a queue row or seq out of range); kLimitExceeded if `data` is above
// kMaxJournalFileBytes. Callbacks run before the error for earlier records.
Result<JournalReadResult> ReadJournal(
    ByteSpan data, const std::function<void(const JournalPut&)>& on_put,
    const std::function<void(std::int64_t queue_row, std::int64_t seq)>& on_del);

// "messages-<16 hex>.journal" -> its number; nullopt for any other name.
std::optional<std::uint64_t> ParseJournalFileName(std::string_view name);
std::string JournalFileName(std::uint64_t number);

}  // namespace rhizome::relay
