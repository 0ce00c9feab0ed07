// Fuzzes the relay's configuration loader (ApplyRelayConfigText: the size
// check, protobuf's text-format parser with rhizome.relay.v1.RelayConfig, and
// the relay's own validation) with arbitrary bytes.
//
// Invariants (a violation aborts): input above kMaxRelayConfigBytes is always
// refused; an accepted config validates and applying it again changes
// nothing; a refused config leaves the settings exactly as they were and says
// why (a non-empty detail, a line that is 0 or positive).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

// relay/src is not on the fuzz targets' include path (tests/fuzz/CMakeLists.txt).
#include "../../relay/src/config.h"

namespace r = rhizome::relay;

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

bool SameLimits(const r::RelayLimits& a, const r::RelayLimits& b) {
  return a.message_ttl_seconds == b.message_ttl_seconds &&
         a.arrival_rounding_seconds == b.arrival_rounding_seconds &&
         a.max_messages_per_queue == b.max_messages_per_queue &&
         a.max_bytes_per_queue == b.max_bytes_per_queue &&
         a.max_items_per_board == b.max_items_per_board &&
         a.max_bytes_per_board == b.max_bytes_per_board &&
         a.max_board_ttl_seconds == b.max_board_ttl_seconds && a.max_queues == b.max_queues &&
         a.max_boards == b.max_boards && a.max_total_bytes == b.max_total_bytes &&
         a.max_corr_ids_remembered == b.max_corr_ids_remembered &&
         a.max_subscriptions_per_connection == b.max_subscriptions_per_connection &&
         a.max_queues_created_per_connection == b.max_queues_created_per_connection &&
         a.commands_per_second == b.commands_per_second && a.command_burst == b.command_burst;
}

bool Same(const r::RelaySettings& a, const r::RelaySettings& b) {
  return a.data_dir == b.data_dir && a.listen == b.listen && a.public_host == b.public_host &&
         a.max_connections == b.max_connections &&
         a.handshake_timeout_ms == b.handshake_timeout_ms &&
         a.idle_timeout_ms == b.idle_timeout_ms && a.write_timeout_ms == b.write_timeout_ms &&
         a.max_write_queue_bytes == b.max_write_queue_bytes &&
         a.metrics_listen == b.metrics_listen && a.log_level == b.log_level &&
         a.expire_interval_seconds == b.expire_interval_seconds &&
         a.commit_interval_us == b.commit_interval_us && SameLimits(a.limits, b.limits);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  r::RelaySettings before;
  before.listen = "127.0.0.1:7750";
  before.limits.max_queues = 12345;  // not the default: "unchanged" must mean unchanged
  r::RelaySettings settings = before;
  r::ConfigProblem problem;
  auto st = r::ApplyRelayConfigText(text, settings, &problem);
  if (size > r::kMaxRelayConfigBytes)
    Check(!st && st.error().code == rhizome::Errc::kLimitExceeded);
  if (st) {
    Check(r::ValidateRelaySettings(settings, nullptr).ok());
    r::RelaySettings again = settings;
    Check(r::ApplyRelayConfigText(text, again, nullptr).ok());
    Check(Same(again, settings));
  } else {
    Check(Same(settings, before));
    Check(!problem.detail.empty());
    Check(problem.line >= 0 && problem.column >= 0);
    Check(st.error().message != nullptr && st.error().message[0] != '\0');
  }
  return 0;
}
