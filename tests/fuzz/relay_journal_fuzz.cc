// Fuzzes the relay's message-journal reader (ReadJournal) with arbitrary
// bytes: what a damaged or hostile journal file in the data directory holds.
//
// Invariants (a violation aborts): the readable part never exceeds the input
// and ends on a batch boundary that reads the same records again on its own,
// with no torn tail; every blob lies inside the input and is at most
// kMaxJournalBlobBytes; a refused input is refused with kCorrupt or
// kLimitExceeded only.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

// relay/src is not on the fuzz targets' include path (tests/fuzz/CMakeLists.txt).
#include "../../relay/src/message_journal.h"

namespace r = rhizome::relay;

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

struct Seen {
  std::int64_t row;
  std::int64_t seq;
  std::size_t blob_size;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const rhizome::ByteSpan input(data, size);
  std::vector<Seen> seen;
  auto result = r::ReadJournal(
      input,
      [&](const r::JournalPut& put) {
        Check(put.blob.size() <= r::kMaxJournalBlobBytes);
        Check(put.blob.empty() ||
              (put.blob.data() >= data && put.blob.data() + put.blob.size() <= data + size));
        seen.push_back({put.queue_row, put.seq, put.blob.size()});
      },
      [&](std::int64_t row, std::int64_t seq) { seen.push_back({row, seq, SIZE_MAX}); });
  if (!result) {
    Check(result.error().code == rhizome::Errc::kCorrupt ||
          result.error().code == rhizome::Errc::kLimitExceeded);
    return 0;
  }
  Check(result->valid_bytes <= size);
  Check(result->torn_tail == (result->valid_bytes < size));
  // The readable prefix alone reads the same records, completely.
  std::vector<Seen> again;
  auto prefix = r::ReadJournal(
      input.first(static_cast<std::size_t>(result->valid_bytes)),
      [&](const r::JournalPut& put) { again.push_back({put.queue_row, put.seq, put.blob.size()}); },
      [&](std::int64_t row, std::int64_t seq) { again.push_back({row, seq, SIZE_MAX}); });
  Check(prefix.ok() && !prefix->torn_tail && prefix->valid_bytes == result->valid_bytes);
  Check(again.size() == seen.size());
  for (std::size_t i = 0; i < seen.size(); ++i) {
    Check(again[i].row == seen[i].row && again[i].seq == seen[i].seq &&
          again[i].blob_size == seen[i].blob_size);
  }
  return 0;
}
