#include "message_journal.h"

#include <sodium.h>
#include <libdeflate.h>

#include <cstdio>
#include <cstring>
#include <optional>
#include <string>

namespace rhizome::relay {

namespace {

constexpr std::uint8_t kPutKind = 'P';
constexpr std::uint8_t kDelKind = 'D';
constexpr Error kDamaged{Errc::kCorrupt, "relay message journal is damaged"};

void AppendLe(Bytes& out, std::uint64_t v, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

std::uint64_t LoadLe(const std::uint8_t* p, std::size_t n) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i) v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
  return v;
}

void StoreLe32(std::uint8_t* p, std::uint32_t v) {
  for (std::size_t i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}

// The CRC-32 of zlib and gzip (ISO-HDLC); the tests check it against zlib's.
std::uint32_t Crc32(ByteSpan data) { return libdeflate_crc32(0, data.data(), data.size()); }

// Queue rows and seqs are positive; a seq leaves room to count up from it.
bool ValidIds(std::int64_t queue_row, std::int64_t seq) {
  return queue_row > 0 && seq > 0 && seq <= kMaxJournalSeq;
}

// Reads one batch body's records. false: a malformed record.
bool ReadRecords(ByteSpan body, const std::function<void(const JournalPut&)>& on_put,
                 const std::function<void(std::int64_t, std::int64_t)>& on_del) {
  std::size_t at = 0;
  while (at < body.size()) {
    const std::uint8_t* p = body.data() + at;
    const std::size_t left = body.size() - at;
    if (p[0] == kDelKind) {
      if (left < kJournalDelBytes) return false;
      const auto row = static_cast<std::int64_t>(LoadLe(p + 1, 8));
      const auto seq = static_cast<std::int64_t>(LoadLe(p + 9, 8));
      if (!ValidIds(row, seq)) return false;
      on_del(row, seq);
      at += kJournalDelBytes;
      continue;
    }
    if (p[0] != kPutKind || left < kJournalPutFixedBytes) return false;
    JournalPut put;
    put.queue_row = static_cast<std::int64_t>(LoadLe(p + 1, 8));
    put.seq = static_cast<std::int64_t>(LoadLe(p + 9, 8));
    if (!ValidIds(put.queue_row, put.seq)) return false;
    std::memcpy(put.message_id.data(), p + 17, put.message_id.size());
    put.received_at = LoadLe(p + 33, 8);
    put.expires_at = LoadLe(p + 41, 8);
    const std::uint64_t blob_size = LoadLe(p + 49, 4);
    if (blob_size > kMaxJournalBlobBytes || blob_size > left - kJournalPutFixedBytes) return false;
    put.blob = ByteSpan(p + kJournalPutFixedBytes, static_cast<std::size_t>(blob_size));
    on_put(put);
    at += kJournalPutFixedBytes + static_cast<std::size_t>(blob_size);
  }
  return true;
}

}  // namespace

void JournalBatch::Put(const JournalPut& put) {
  buf_.push_back(kPutKind);
  AppendLe(buf_, static_cast<std::uint64_t>(put.queue_row), 8);
  AppendLe(buf_, static_cast<std::uint64_t>(put.seq), 8);
  buf_.insert(buf_.end(), put.message_id.begin(), put.message_id.end());
  AppendLe(buf_, put.received_at, 8);
  AppendLe(buf_, put.expires_at, 8);
  AppendLe(buf_, put.blob.size(), 4);
  buf_.insert(buf_.end(), put.blob.begin(), put.blob.end());
}

void JournalBatch::Del(std::int64_t queue_row, std::int64_t seq) {
  buf_.push_back(kDelKind);
  AppendLe(buf_, static_cast<std::uint64_t>(queue_row), 8);
  AppendLe(buf_, static_cast<std::uint64_t>(seq), 8);
}

ByteSpan JournalBatch::Finish() {
  const ByteSpan body(buf_.data() + kJournalBatchHeaderBytes,
                      buf_.size() - kJournalBatchHeaderBytes);
  StoreLe32(buf_.data(), kJournalMagic);
  StoreLe32(buf_.data() + 4, static_cast<std::uint32_t>(body.size()));
  StoreLe32(buf_.data() + 8, Crc32(body));
  return buf_;
}

void JournalBatch::Clear() {
  // SECURITY: the blobs are sealed (only their recipients can open them), but
  // a freed buffer is not the place for them either.
  sodium_memzero(buf_.data(), buf_.size());
  buf_.assign(kJournalBatchHeaderBytes, 0);
}

Result<JournalReadResult> ReadJournal(
    ByteSpan data, const std::function<void(const JournalPut&)>& on_put,
    const std::function<void(std::int64_t queue_row, std::int64_t seq)>& on_del) {
  if (data.size() > kMaxJournalFileBytes) {
    return Error{Errc::kLimitExceeded, "relay message journal file is too large"};
  }
  JournalReadResult result;
  std::size_t at = 0;
  while (at < data.size()) {
    const std::size_t left = data.size() - at;
    const std::uint8_t* p = data.data() + at;
    if (left < kJournalBatchHeaderBytes || LoadLe(p, 4) != kJournalMagic) break;
    const std::uint64_t body_size = LoadLe(p + 4, 4);
    if (body_size > kMaxJournalBatchBytes || body_size > left - kJournalBatchHeaderBytes) break;
    const ByteSpan body(p + kJournalBatchHeaderBytes, static_cast<std::size_t>(body_size));
    if (Crc32(body) != static_cast<std::uint32_t>(LoadLe(p + 8, 4))) break;
    if (!ReadRecords(body, on_put, on_del)) return kDamaged;
    at += kJournalBatchHeaderBytes + body.size();
  }
  result.valid_bytes = at;
  result.torn_tail = at < data.size();
  return result;
}

std::optional<std::uint64_t> ParseJournalFileName(std::string_view name) {
  constexpr std::size_t kDigits = 16;
  if (name.size() != kJournalFilePrefix.size() + kDigits + kJournalFileSuffix.size() ||
      !name.starts_with(kJournalFilePrefix) || !name.ends_with(kJournalFileSuffix)) {
    return std::nullopt;
  }
  std::uint64_t number = 0;
  for (char c : name.substr(kJournalFilePrefix.size(), kDigits)) {
    int digit;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      digit = c - 'a' + 10;
    } else {
      return std::nullopt;
    }
    number = (number << 4) | static_cast<std::uint64_t>(digit);
  }
  return number;
}

std::string JournalFileName(std::uint64_t number) {
  char digits[17];
  std::snprintf(digits, sizeof digits, "%016llx", static_cast<unsigned long long>(number));
  return std::string(kJournalFilePrefix) + digits + std::string(kJournalFileSuffix);
}

}  // namespace rhizome::relay
