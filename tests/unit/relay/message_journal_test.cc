// The message journal's byte format (relay/src/message_journal.h): batches
// read back as written; a torn or damaged batch ends the readable part (every
// cut and every bit flip); a malformed record inside an intact batch is
// refused as damage; the reader's named limits hold.
#include "message_journal.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <zlib.h>

#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace rhizome::relay {
namespace {

struct Del {
  std::int64_t queue_row;
  std::int64_t seq;
  bool operator==(const Del&) const = default;
};
struct Put {
  std::int64_t queue_row;
  std::int64_t seq;
  protocol::Id message_id;
  std::uint64_t received_at;
  std::uint64_t expires_at;
  Bytes blob;
  bool operator==(const Put&) const = default;
};
using Record = std::variant<Put, Del>;

Put MakePut(std::int64_t seq, std::size_t size) {
  Put p{7, seq, {}, 1000 + static_cast<std::uint64_t>(seq), 99999, Bytes(size)};
  p.message_id.fill(static_cast<std::uint8_t>(seq));
  for (std::size_t i = 0; i < size; ++i) p.blob[i] = static_cast<std::uint8_t>(seq * 31 + i);
  return p;
}

Bytes BatchOf(const std::vector<Record>& records) {
  JournalBatch batch;
  for (const auto& r : records) {
    if (const auto* p = std::get_if<Put>(&r)) {
      batch.Put(JournalPut{p->queue_row, p->seq, p->message_id, p->received_at, p->expires_at,
                           p->blob});
    } else {
      const auto& d = std::get<Del>(r);
      batch.Del(d.queue_row, d.seq);
    }
  }
  const ByteSpan bytes = batch.Finish();
  return Bytes(bytes.begin(), bytes.end());
}

struct ReadBack {
  Result<JournalReadResult> result;
  std::vector<Record> records;
};

ReadBack Read(ByteSpan data) {
  std::vector<Record> records;
  auto result = ReadJournal(
      data,
      [&](const JournalPut& p) {
        records.push_back(Put{p.queue_row, p.seq, p.message_id, p.received_at, p.expires_at,
                              Bytes(p.blob.begin(), p.blob.end())});
      },
      [&](std::int64_t row, std::int64_t seq) { records.push_back(Del{row, seq}); });
  return {std::move(result), std::move(records)};
}

// A batch with a valid header and CRC around an arbitrary body.
Bytes SealedBody(const Bytes& body) {
  Bytes out(kJournalBatchHeaderBytes);
  auto le32 = [&](std::size_t at, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out[at + i] = static_cast<std::uint8_t>(v >> (8 * i));
  };
  le32(0, kJournalMagic);
  le32(4, static_cast<std::uint32_t>(body.size()));
  le32(8, static_cast<std::uint32_t>(crc32(crc32(0L, Z_NULL, 0), body.data(),
                                           static_cast<uInt>(body.size()))));
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

Bytes Concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

TEST(MessageJournalTest, BatchesReadBackAsWrittenInOrder) {
  const std::vector<Record> first = {MakePut(1, 1280), MakePut(2, 0), Del{7, 1}};
  const std::vector<Record> second = {Del{7, 2}, MakePut(3, 16384)};
  const Bytes file = Concat({BatchOf(first), BatchOf(second)});
  auto back = Read(file);
  ASSERT_TRUE(back.result.ok()) << back.result.error().message;
  EXPECT_EQ(back.result->valid_bytes, file.size());
  EXPECT_FALSE(back.result->torn_tail);
  std::vector<Record> want = first;
  want.insert(want.end(), second.begin(), second.end());
  EXPECT_EQ(back.records, want);
}

// The batch CRC is zlib's CRC-32 (the format says so; the relay computes it
// with libdeflate): checked against zlib's own crc32() for every body length
// from one record up to about 2.1 KB, and a few large ones.
TEST(MessageJournalTest, BatchCrcIsZlibsCrc32ForEveryLength) {
  std::vector<std::size_t> sizes;
  for (std::size_t n = 0; n <= 2100; ++n) sizes.push_back(n);
  for (std::size_t n : {std::size_t{16383}, std::size_t{65536}, kMaxJournalBlobBytes - 1,
                        kMaxJournalBlobBytes}) {
    sizes.push_back(n);
  }
  for (std::size_t n : sizes) {
    Put put = MakePut(1, n);
    for (std::size_t i = 0; i < n; ++i) put.blob[i] = static_cast<std::uint8_t>(i * 131 + n);
    const Bytes batch = BatchOf({put});
    ASSERT_GT(batch.size(), kJournalBatchHeaderBytes);
    const std::uint8_t* body = batch.data() + kJournalBatchHeaderBytes;
    const std::size_t body_size = batch.size() - kJournalBatchHeaderBytes;
    const auto want = static_cast<std::uint32_t>(
        crc32(crc32(0L, Z_NULL, 0), body, static_cast<uInt>(body_size)));
    std::uint32_t got = 0;
    for (int i = 0; i < 4; ++i) got |= static_cast<std::uint32_t>(batch[8 + i]) << (8 * i);
    ASSERT_EQ(got, want) << "blob of " << n << " bytes";
  }
}

TEST(MessageJournalTest, EmptyFileAndEmptyBatchHoldNothing) {
  auto empty = Read({});
  ASSERT_TRUE(empty.result.ok());
  EXPECT_EQ(empty.result->valid_bytes, 0u);
  EXPECT_FALSE(empty.result->torn_tail);
  const Bytes batch = BatchOf({});
  EXPECT_EQ(batch.size(), kJournalBatchHeaderBytes);
  auto back = Read(batch);
  ASSERT_TRUE(back.result.ok());
  EXPECT_EQ(back.result->valid_bytes, batch.size());
  EXPECT_TRUE(back.records.empty());
}

TEST(MessageJournalTest, BatchBufferIsReusable) {
  JournalBatch batch;
  const Put p = MakePut(5, 100);
  batch.Put(JournalPut{p.queue_row, p.seq, p.message_id, p.received_at, p.expires_at, p.blob});
  EXPECT_FALSE(batch.empty());
  batch.Clear();
  EXPECT_TRUE(batch.empty());
  batch.Del(7, 5);
  const ByteSpan bytes = batch.Finish();
  auto back = Read(bytes);
  ASSERT_TRUE(back.result.ok());
  EXPECT_EQ(back.records, (std::vector<Record>{Del{7, 5}}));
}

// A crash can cut the file anywhere in its last batch: the batches before it
// are read, the cut one never (not even its first records).
TEST(MessageJournalTest, EveryCutOfTheLastBatchLeavesExactlyTheEarlierOnes) {
  const Bytes first = BatchOf({MakePut(1, 300), Del{7, 1}});
  const Bytes last = BatchOf({MakePut(2, 200), Del{7, 2}, MakePut(3, 50)});
  const Bytes file = Concat({first, last});
  for (std::size_t cut = first.size(); cut < file.size(); ++cut) {
    auto back = Read(ByteSpan(file.data(), cut));
    ASSERT_TRUE(back.result.ok()) << "cut at " << cut;
    EXPECT_EQ(back.result->valid_bytes, first.size()) << "cut at " << cut;
    EXPECT_EQ(back.result->torn_tail, cut > first.size()) << "cut at " << cut;
    ASSERT_EQ(back.records.size(), 2u) << "cut at " << cut;
  }
}

// CRC-32 finds every single-bit error: a flip anywhere in a batch (header or
// body) ends the readable part there.
TEST(MessageJournalTest, FlipAnyBitOfABatchAndItIsNotRead) {
  const Bytes first = BatchOf({MakePut(1, 40)});
  const Bytes second = BatchOf({MakePut(2, 24), Del{7, 1}});
  const Bytes third = BatchOf({Del{7, 2}});
  const Bytes file = Concat({first, second, third});
  for (std::size_t byte = first.size(); byte < first.size() + second.size(); ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      Bytes damaged = file;
      damaged[byte] ^= static_cast<std::uint8_t>(1u << bit);
      auto back = Read(damaged);
      ASSERT_TRUE(back.result.ok()) << byte << ":" << bit;
      EXPECT_EQ(back.result->valid_bytes, first.size()) << byte << ":" << bit;
      EXPECT_TRUE(back.result->torn_tail);
      EXPECT_EQ(back.records.size(), 1u) << byte << ":" << bit;
    }
  }
}

TEST(MessageJournalTest, BatchLongerThanTheLimitIsATornTail) {
  Bytes header(kJournalBatchHeaderBytes, 0);
  const std::uint32_t magic = kJournalMagic;
  const auto len = static_cast<std::uint32_t>(kMaxJournalBatchBytes + 1);
  for (int i = 0; i < 4; ++i) {
    header[i] = static_cast<std::uint8_t>(magic >> (8 * i));
    header[4 + i] = static_cast<std::uint8_t>(len >> (8 * i));
  }
  const Bytes file = Concat({BatchOf({Del{1, 1}}), header, Bytes(64, 0)});
  auto back = Read(file);
  ASSERT_TRUE(back.result.ok());
  EXPECT_TRUE(back.result->torn_tail);
  EXPECT_EQ(back.records.size(), 1u);
}

TEST(MessageJournalTest, ZeroFilledTailIsATornTail) {
  // What an unsynced region can read back as after a power loss.
  const Bytes good = BatchOf({MakePut(1, 10)});
  auto back = Read(Concat({good, Bytes(4096, 0)}));
  ASSERT_TRUE(back.result.ok());
  EXPECT_EQ(back.result->valid_bytes, good.size());
  EXPECT_TRUE(back.result->torn_tail);
}

// An intact batch (right CRC) with a malformed record is damage, not a torn
// tail: refused with kCorrupt. Ids out of range count as malformed (the
// engine counts seqs up from the highest it finds).
TEST(MessageJournalTest, MalformedRecordsInAnIntactBatchAreDamage) {
  const Bytes put = [] {
    Bytes b = BatchOf({MakePut(1, 20)});
    return Bytes(b.begin() + kJournalBatchHeaderBytes, b.end());
  }();
  const Bytes del = [] {
    Bytes b = BatchOf({Del{1, 2}});
    return Bytes(b.begin() + kJournalBatchHeaderBytes, b.end());
  }();
  ASSERT_EQ(put.size(), kJournalPutFixedBytes + 20);
  ASSERT_EQ(del.size(), kJournalDelBytes);
  auto with_u64 = [](Bytes body, std::size_t at, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) body[at + i] = static_cast<std::uint8_t>(v >> (8 * i));
    return body;
  };
  auto blob_size = [](Bytes body, std::uint32_t size) {
    for (int i = 0; i < 4; ++i) body[49 + i] = static_cast<std::uint8_t>(size >> (8 * i));
    return body;
  };
  const std::vector<std::pair<std::string, Bytes>> cases = {
      {"unknown kind", Bytes{'X', 0, 0}},
      {"zero kind", Bytes(kJournalDelBytes, 0)},
      {"put cut short", Bytes(put.begin(), put.end() - 1)},
      {"put header only", Bytes(put.begin(), put.begin() + kJournalPutFixedBytes - 1)},
      {"del cut short", Bytes(del.begin(), del.end() - 1)},
      {"kind byte alone", Bytes{'P'}},
      {"blob longer than the batch", blob_size(put, 21)},
      {"blob above the limit",
       blob_size(put, static_cast<std::uint32_t>(kMaxJournalBlobBytes + 1))},
      {"good record then junk", Concat({del, Bytes{'D', 1}})},
      {"put of queue row 0", with_u64(put, 1, 0)},
      {"put of seq 0", with_u64(put, 9, 0)},
      {"put of a negative seq", with_u64(put, 9, ~0ull)},
      {"put of a seq above the limit", with_u64(put, 9, kMaxJournalSeq + 1)},
      {"del of a negative queue row", with_u64(del, 1, 1ull << 63)},
      {"del of seq 0", with_u64(del, 9, 0)},
      {"del of a seq above the limit", with_u64(del, 9, kMaxJournalSeq + 1)},
  };
  for (const auto& [name, body] : cases) {
    auto back = Read(Concat({BatchOf({Del{9, 9}}), SealedBody(body)}));
    ASSERT_FALSE(back.result.ok()) << name;
    EXPECT_EQ(back.result.error().code, Errc::kCorrupt) << name;
  }
  // Control: the same framing around a well-formed body reads, ids at the
  // edges of their range included.
  auto control = Read(SealedBody(Concat({put, with_u64(del, 9, kMaxJournalSeq)})));
  ASSERT_TRUE(control.result.ok());
  EXPECT_EQ(control.records.size(), 2u);
}

TEST(MessageJournalTest, BlobAtTheLimitIsRead) {
  const Bytes file = BatchOf({MakePut(1, kMaxJournalBlobBytes)});
  auto back = Read(file);
  ASSERT_TRUE(back.result.ok());
  ASSERT_EQ(back.records.size(), 1u);
  EXPECT_EQ(std::get<Put>(back.records[0]).blob.size(), kMaxJournalBlobBytes);
}

TEST(MessageJournalTest, FileAboveTheLimitIsRefusedUnread) {
  // Untouched anonymous pages: no memory is used, and the reader must not
  // look at them anyway.
  const std::size_t size = kMaxJournalFileBytes + 1;
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  auto back = Read(ByteSpan(static_cast<const std::uint8_t*>(p), size));
  ::munmap(p, size);
  ASSERT_FALSE(back.result.ok());
  EXPECT_EQ(back.result.error().code, Errc::kLimitExceeded);
  EXPECT_TRUE(back.records.empty());
}

TEST(MessageJournalTest, FileNamesAreExactlyPrefixSixteenHexDigitsSuffix) {
  EXPECT_EQ(JournalFileName(1), "messages-0000000000000001.journal");
  EXPECT_EQ(JournalFileName(0xfedcba9876543210ull), "messages-fedcba9876543210.journal");
  for (std::uint64_t n : {0ull, 1ull, 255ull, 0xffffffffffffffffull}) {
    EXPECT_EQ(ParseJournalFileName(JournalFileName(n)), std::optional<std::uint64_t>(n));
  }
  for (const char* name :
       {"", "relay.db", "relay.db-wal", "messages-.journal", "messages-000000000000001.journal",
        "messages-00000000000000001.journal", "messages-000000000000000A.journal",
        "messages-000000000000000g.journal", "messages-0000000000000001.journal.tmp",
        "xmessages-000000000000001.journal", "messages-0000000000000001.jour",
        "messages-00000000 0000001.journal"}) {
    EXPECT_FALSE(ParseJournalFileName(name).has_value()) << name;
  }
}

}  // namespace
}  // namespace rhizome::relay
