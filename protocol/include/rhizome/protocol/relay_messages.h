// Relay commands and replies (DESIGN §9) as plain structs, and the bytes their
// authorizers cover. They travel inside a TransportMessage (transport.h),
// which parses and serialises them. Field by field in
// docs/protocol/relay-commands.md.
//
// Authorization (DESIGN §9). Every command is bound to the Noise handshake
// hash h of its connection and its random corr_id (a relay rejects a repeated
// corr_id within one connection):
//   auth = RelayAuthMessage(h, corr_id, entity_id, code)
//        = "rhizome/v1/relay-auth" || u8 code || u8 len(h) || h || corr_id (16)
//          || u8 len(entity_id) || entity_id
// - KEY, SUB, GET, DEL carry Ed25519(recipient key, auth), entity = recipient id.
// - SEND carries BLAKE2b-256 keyed with the queue's send key over auth,
//   entity = sender id; board append/read the same with the board's write/read
//   key, entity = board id.
// - NEW, ACK and board create carry no authorizer: NEW and create make a new
//   entity (access is gated by the relay's PSK and quotas); ACK is accepted only
//   on a connection where the queue was subscribed or fetched with GET.
// SECURITY: command fields outside `auth` (a SEND's blob, a KEY's send key) are
// protected by the Noise channel, and `auth` binds the authorizer to that
// channel (h) and to this one command (corr_id), so it cannot be replayed on
// another connection or for another command.
//
// Validation: every id 16 bytes and non-zero, keys 32 bytes and non-zero,
// signatures 64, MACs 32, blobs 1..kMaxBlobBytes, counts capped.
// Thread safety: value types and pure functions.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <variant>
#include <vector>

#include "rhizome/crypto/bytes.h"
#include "rhizome/crypto/result.h"
#include "rhizome/crypto/secret.h"
#include "rhizome/protocol/relay_key_statement.h"
#include "rhizome/protocol/wire_types.h"

namespace rhizome::protocol {

// Largest blob a relay stores or a peer link carries: the largest padding
// class (16384) plus up to 1 KiB of ratchet and sealing overhead.
inline constexpr std::size_t kMaxBlobBytes = 17408;
// Relay blobs come in exactly these sizes, one per padding class
// (docs/protocol/padding.md): the class's padded size plus room for the
// ratchet's 120 bytes and the per-path seal's 52 (path_seal.h) (256 bytes for the three
// small classes, 1 KiB for the largest). A sender pads its sealed blob to the
// smallest size that holds it; a relay refuses any other size (kMalformed),
// so neither the network nor a seized relay sees more than the class.
inline constexpr std::array<std::size_t, 4> kRelayBlobSizes = {512, 1280, 4352, kMaxBlobBytes};

// True when `n` is one of kRelayBlobSizes.
constexpr bool IsRelayBlobSize(std::size_t n) {
  for (std::size_t size : kRelayBlobSizes) {
    if (n == size) return true;
  }
  return false;
}

// The smallest relay blob size holding `content_bytes`, or 0 when none does
// (more than kMaxBlobBytes).
constexpr std::size_t RelayBlobSizeFor(std::size_t content_bytes) {
  for (std::size_t size : kRelayBlobSizes) {
    if (content_bytes <= size) return size;
  }
  return 0;
}
// Most items in one ReadBoard request or BoardItems reply.
inline constexpr std::size_t kMaxBoardItemsPerRead = 64;
// Longest board lifetime a client may ask for (366 days); relays may lower it.
inline constexpr std::uint32_t kMaxBoardTtlSeconds = 366u * 24u * 3600u;
// Longest handshake hash RelayAuthMessage takes (BLAKE2b-512 output).
inline constexpr std::size_t kMaxHandshakeHashBytes = 64;

// Command codes, bound into every authorizer.
enum class RelayCommandCode : std::uint8_t {
  kNew = 1,
  kKey = 2,
  kSend = 3,
  kSub = 4,
  kGet = 5,
  kAck = 6,
  kDel = 7,
  kBoardCreate = 8,
  kBoardAppend = 9,
  kBoardRead = 10,
};

// ---- commands ---------------------------------------------------------------

struct NewQueue {
  PublicKey recipient_auth_key{};  // Ed25519; signs the recipient's commands
};
struct SetQueueKey {  // KEY
  Id recipient_id{};
  crypto::SecretBytes send_key;  // 32 bytes
  Signature signature{};
};
struct SendMessage {  // SEND
  Id sender_id{};
  Mac mac{};
  Bytes blob;
};
struct Subscribe {  // SUB
  Id recipient_id{};
  Signature signature{};
};
struct GetMessage {  // GET
  Id recipient_id{};
  Signature signature{};
};
struct AckMessage {  // ACK
  Id recipient_id{};
  Id message_id{};
  // No reply on success; a later reply on the connection implies the
  // deletion is durable (docs/protocol/relay-commands.md, "Quiet ACK").
  bool quiet = false;
};
struct DeleteQueue {  // DEL
  Id recipient_id{};
  Signature signature{};
};
struct CreateBoard {
  Id board_id{};
  crypto::SecretBytes read_key;   // 32 bytes
  crypto::SecretBytes write_key;  // 32 bytes
  std::uint32_t ttl_seconds = 0;  // 1..kMaxBoardTtlSeconds
};
struct AppendBoard {
  Id board_id{};
  Mac mac{};
  Bytes blob;
};
struct ReadBoard {
  Id board_id{};
  Mac mac{};
  std::uint64_t cursor = 0;     // 0 = from the start
  std::uint32_t max_items = 0;  // 1..kMaxBoardItemsPerRead
};

using RelayCommandBody = std::variant<NewQueue, SetQueueKey, SendMessage, Subscribe, GetMessage,
                                      AckMessage, DeleteQueue, CreateBoard, AppendBoard, ReadBoard>;

struct RelayCommand {
  Id corr_id{};
  RelayCommandBody body;
};

RelayCommandCode CommandCode(const RelayCommandBody& body) noexcept;

// The entity a command's authorizer binds: recipient id, sender id or board
// id; empty for NEW.
ByteSpan CommandEntityId(const RelayCommandBody& body) noexcept;

// Errors: kMalformed (zero id or key, wrong secret size, empty blob, ttl or
// max_items out of range), kLimitExceeded (blob above kMaxBlobBytes).
Status ValidateRelayCommand(const RelayCommand& command);

// The bytes an authorizer covers (layout in the header comment).
// Errors: kInvalidArgument if handshake_hash is empty or longer than
// kMaxHandshakeHashBytes, or entity_id is longer than 255 bytes.
Result<Bytes> RelayAuthMessage(ByteSpan handshake_hash, const Id& corr_id, ByteSpan entity_id,
                               RelayCommandCode code);

// ---- replies ----------------------------------------------------------------

struct RelayOk {};
struct QueueCreated {
  Id recipient_id{};
  Id sender_id{};  // differs from recipient_id
};
struct QueueMessage {
  Id recipient_id{};
  Id message_id{};
  std::uint64_t received_at = 0;  // Unix seconds, rounded by the relay
  Bytes blob;
};
struct BoardItem {
  std::uint64_t seq = 0;  // >= 1
  std::uint64_t received_at = 0;
  Bytes blob;
};
struct BoardItems {
  std::vector<BoardItem> items;  // strictly ascending seq, at most kMaxBoardItemsPerRead
  std::uint64_t next_cursor = 0;  // >= the last item's seq
};

// Codes only, never free text. The parser keeps values this build does not
// know (a newer relay); treat them as a generic failure.
enum class RelayErrorCode : std::uint32_t {
  kMalformed = 1,
  kAuth = 2,  // authorization failed, or no such queue/board (deliberately not told apart)
  kDuplicateCorrId = 3,
  kQuota = 4,
  kRateLimited = 5,
  kTooLarge = 6,
  kAlreadySet = 7,
  kUnsupported = 8,
  kInternal = 9,
};
struct RelayError {
  RelayErrorCode code = RelayErrorCode::kInternal;  // 1..2^31-1
};

// The unsolicited reply kind that carries a RelayKeyStatement
// (relay_key_statement.h): the relay pushes it, without a corr id, right after
// the handshake once it has rotated a key (DESIGN §9). A client verifies and
// follows it with ApplyKeyStatement; a statement that does not verify is
// ignored, never an error that closes the connection.

using RelayReplyBody =
    std::variant<RelayOk, QueueCreated, QueueMessage, BoardItems, RelayError, RelayKeyStatement>;

struct RelayReply {
  // The command's corr_id. Required for RelayOk, QueueCreated and BoardItems;
  // absent for pushed replies (a QueueMessage after SUB, a RelayKeyStatement,
  // an error not tied to one command); optional for QueueMessage and RelayError.
  std::optional<Id> corr_id;
  RelayReplyBody body;
};

// Errors: kMalformed (a rule above, a zero id or key), kLimitExceeded (blob or
// item count above its limit).
Status ValidateRelayReply(const RelayReply& reply);

}  // namespace rhizome::protocol
