// Constants of the relay engine that are not operator-configurable
// (RelayLimits holds those), shared with its unit tests. Private to the relay
// module; docs/relay-internals.md explains each.
#pragma once

#include <cstddef>
#include <cstdint>

#include "rhizome/protocol/transport.h"

namespace rhizome::relay {

// Messages pushed to one subscription and not yet acknowledged: further
// messages wait in the store until an ACK frees a slot (flow control, and a
// bound on what one SUB puts into one Flush()).
inline constexpr std::size_t kDeliveryWindow = 8;
// Unacknowledged pushed messages per connection, over all its subscriptions.
inline constexpr std::size_t kMaxPushedPerConnection = 64;
// Messages one connection may hold fetched-but-unacknowledged per queue
// (pushed or returned by GET); the oldest entry is forgotten beyond it.
inline constexpr std::size_t kMaxUnackedPerQueue = 2 * kDeliveryWindow;

// A BoardItems reply must fit one transport message: the items' blobs plus
// at most kBoardItemOverheadBytes each and kBoardReplyOverheadBytes in all.
// (Protobuf: item tag+length 4, seq 11, received_at 11, blob tag+length 4.)
inline constexpr std::size_t kBoardItemOverheadBytes = 32;
inline constexpr std::size_t kBoardReplyOverheadBytes = 64;
inline constexpr std::size_t kBoardReplyBudgetBytes =
    protocol::kMaxTransportMessageBytes - kBoardReplyOverheadBytes;

// Expire(): rows per batch (one transaction each) and batches per call.
inline constexpr std::size_t kExpireBatchRows = 1024;
inline constexpr std::size_t kMaxExpireBatchesPerCall = 16;

}  // namespace rhizome::relay
