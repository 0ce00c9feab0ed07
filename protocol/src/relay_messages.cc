#include "rhizome/protocol/relay_messages.h"

#include <type_traits>

#include "rhizome/crypto/sign.h"

namespace rhizome::protocol {

namespace {

constexpr std::string_view kAuthLabel = "rhizome/v1/relay-auth";
constexpr std::uint32_t kMaxEnumValue = 0x7fffffff;  // int32 on the wire; negatives refused

Error Malformed(const char* message) { return Error{Errc::kMalformed, message}; }

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

Status CheckId(const Id& id, const char* message) {
  if (IsAllZero(id)) return Malformed(message);
  return {};
}

Status CheckSecretKey(const crypto::SecretBytes& key, const char* message) {
  if (key.size() != kKeyBytes || IsAllZero(key.expose())) return Malformed(message);
  return {};
}

Status CheckBlob(const Bytes& blob) {
  if (blob.empty()) return Malformed("blob is empty");
  if (blob.size() > kMaxBlobBytes) return Error{Errc::kLimitExceeded, "blob is too large"};
  return {};
}

}  // namespace

RelayCommandCode CommandCode(const RelayCommandBody& body) noexcept {
  return std::visit(
      Overloaded{
          [](const NewQueue&) { return RelayCommandCode::kNew; },
          [](const SetQueueKey&) { return RelayCommandCode::kKey; },
          [](const SendMessage&) { return RelayCommandCode::kSend; },
          [](const Subscribe&) { return RelayCommandCode::kSub; },
          [](const GetMessage&) { return RelayCommandCode::kGet; },
          [](const AckMessage&) { return RelayCommandCode::kAck; },
          [](const DeleteQueue&) { return RelayCommandCode::kDel; },
          [](const CreateBoard&) { return RelayCommandCode::kBoardCreate; },
          [](const AppendBoard&) { return RelayCommandCode::kBoardAppend; },
          [](const ReadBoard&) { return RelayCommandCode::kBoardRead; },
      },
      body);
}

ByteSpan CommandEntityId(const RelayCommandBody& body) noexcept {
  return std::visit(Overloaded{
                        [](const NewQueue&) { return ByteSpan(); },
                        [](const SetQueueKey& c) { return ByteSpan(c.recipient_id); },
                        [](const SendMessage& c) { return ByteSpan(c.sender_id); },
                        [](const Subscribe& c) { return ByteSpan(c.recipient_id); },
                        [](const GetMessage& c) { return ByteSpan(c.recipient_id); },
                        [](const AckMessage& c) { return ByteSpan(c.recipient_id); },
                        [](const DeleteQueue& c) { return ByteSpan(c.recipient_id); },
                        [](const CreateBoard& c) { return ByteSpan(c.board_id); },
                        [](const AppendBoard& c) { return ByteSpan(c.board_id); },
                        [](const ReadBoard& c) { return ByteSpan(c.board_id); },
                    },
                    body);
}

Status ValidateRelayCommand(const RelayCommand& command) {
  RHIZOME_TRY(CheckId(command.corr_id, "corr id is all zeros"));
  return std::visit(
      Overloaded{
          [](const NewQueue& c) -> Status {
            if (!crypto::Ed25519IsStrictPublicKey(c.recipient_auth_key)) {
              return Malformed("recipient auth key is not a valid Ed25519 key");
            }
            return {};
          },
          [](const SetQueueKey& c) -> Status {
            RHIZOME_TRY(CheckId(c.recipient_id, "recipient id is all zeros"));
            return CheckSecretKey(c.send_key, "send key is not 32 non-zero bytes");
          },
          [](const SendMessage& c) -> Status {
            RHIZOME_TRY(CheckId(c.sender_id, "sender id is all zeros"));
            return CheckBlob(c.blob);
          },
          [](const Subscribe& c) { return CheckId(c.recipient_id, "recipient id is all zeros"); },
          [](const GetMessage& c) { return CheckId(c.recipient_id, "recipient id is all zeros"); },
          [](const AckMessage& c) -> Status {
            RHIZOME_TRY(CheckId(c.recipient_id, "recipient id is all zeros"));
            return CheckId(c.message_id, "message id is all zeros");
          },
          [](const DeleteQueue& c) { return CheckId(c.recipient_id, "recipient id is all zeros"); },
          [](const CreateBoard& c) -> Status {
            RHIZOME_TRY(CheckId(c.board_id, "board id is all zeros"));
            RHIZOME_TRY(CheckSecretKey(c.read_key, "board read key is not 32 non-zero bytes"));
            RHIZOME_TRY(CheckSecretKey(c.write_key, "board write key is not 32 non-zero bytes"));
            if (c.ttl_seconds == 0 || c.ttl_seconds > kMaxBoardTtlSeconds) {
              return Malformed("board ttl is out of range");
            }
            return {};
          },
          [](const AppendBoard& c) -> Status {
            RHIZOME_TRY(CheckId(c.board_id, "board id is all zeros"));
            return CheckBlob(c.blob);
          },
          [](const ReadBoard& c) -> Status {
            RHIZOME_TRY(CheckId(c.board_id, "board id is all zeros"));
            if (c.max_items == 0 || c.max_items > kMaxBoardItemsPerRead) {
              return Malformed("board read max_items is out of range");
            }
            return {};
          },
      },
      command.body);
}

Result<Bytes> RelayAuthMessage(ByteSpan handshake_hash, const Id& corr_id, ByteSpan entity_id,
                               RelayCommandCode code) {
  if (handshake_hash.empty() || handshake_hash.size() > kMaxHandshakeHashBytes) {
    return Error{Errc::kInvalidArgument, "handshake hash has a bad size"};
  }
  if (entity_id.size() > 255) return Error{Errc::kInvalidArgument, "entity id is too long"};
  Bytes out;
  out.reserve(kAuthLabel.size() + 3 + handshake_hash.size() + corr_id.size() + entity_id.size());
  Append(out, AsBytes(kAuthLabel));
  out.push_back(static_cast<std::uint8_t>(code));
  out.push_back(static_cast<std::uint8_t>(handshake_hash.size()));
  Append(out, handshake_hash);
  Append(out, corr_id);
  out.push_back(static_cast<std::uint8_t>(entity_id.size()));
  Append(out, entity_id);
  return out;
}

Status ValidateRelayReply(const RelayReply& reply) {
  if (reply.corr_id) RHIZOME_TRY(CheckId(*reply.corr_id, "corr id is all zeros"));
  const bool has_corr = reply.corr_id.has_value();
  return std::visit(
      Overloaded{
          [&](const RelayOk&) -> Status {
            if (!has_corr) return Malformed("reply lacks its corr id");
            return {};
          },
          [&](const QueueCreated& r) -> Status {
            if (!has_corr) return Malformed("reply lacks its corr id");
            RHIZOME_TRY(CheckId(r.recipient_id, "recipient id is all zeros"));
            RHIZOME_TRY(CheckId(r.sender_id, "sender id is all zeros"));
            if (r.recipient_id == r.sender_id) {
              return Malformed("queue recipient and sender ids are equal");
            }
            return {};
          },
          [](const QueueMessage& r) -> Status {
            RHIZOME_TRY(CheckId(r.recipient_id, "recipient id is all zeros"));
            RHIZOME_TRY(CheckId(r.message_id, "message id is all zeros"));
            return CheckBlob(r.blob);
          },
          [&](const BoardItems& r) -> Status {
            if (!has_corr) return Malformed("reply lacks its corr id");
            if (r.items.size() > kMaxBoardItemsPerRead) {
              return Error{Errc::kLimitExceeded, "too many board items"};
            }
            std::uint64_t last = 0;
            for (const auto& item : r.items) {
              if (item.seq <= last) return Malformed("board items are not strictly ascending");
              last = item.seq;
              RHIZOME_TRY(CheckBlob(item.blob));
            }
            if (r.next_cursor < last) return Malformed("board cursor is behind the last item");
            return {};
          },
          [](const RelayError& r) -> Status {
            const auto code = static_cast<std::uint32_t>(r.code);
            if (code == 0 || code > kMaxEnumValue) return Malformed("relay error code is out of range");
            return {};
          },
          [&](const RelayKeyStatement& r) -> Status {
            if (has_corr) return Malformed("key statement carries a corr id");
            return ValidateRelayKeyStatement(r);
          },
      },
      reply.body);
}

}  // namespace rhizome::protocol
