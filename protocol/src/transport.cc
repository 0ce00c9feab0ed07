#include "rhizome/protocol/transport.h"

#include <algorithm>
#include <optional>

#include "rhizome/wire/v1/relay.pb.h"
#include "rhizome/wire/v1/transport.pb.h"
#include "wire_codec.h"

namespace rhizome::protocol {

namespace pb = rhizome::wire::v1;

namespace {

constexpr std::uint32_t kMaxEnumValue = 0x7fffffff;  // int32 on the wire; negatives refused

Error Malformed(const char* message) { return Error{Errc::kMalformed, message}; }

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

using internal::CopyExact;
using internal::FieldBytes;
using internal::ToField;

Status CopyId(const std::string& field, Id& out, const char* message) {
  if (!CopyExact(field, out)) return Malformed(message);
  return {};
}

Status CopySecretKey(const std::string& field, crypto::SecretBytes& out, const char* message) {
  if (field.size() != kKeyBytes) return Malformed(message);
  out = crypto::SecretBytes::CopyFrom(FieldBytes(field));
  return {};
}

// Blobs are size-checked before they are copied.
Status CopyBlob(const std::string& field, Bytes& out) {
  if (field.size() > kMaxBlobBytes) return Error{Errc::kLimitExceeded, "blob is too large"};
  const ByteSpan bytes = FieldBytes(field);
  out.assign(bytes.begin(), bytes.end());
  return {};
}

Status CheckEnum(int value, const char* message) {
  if (value <= 0) return Malformed(message);
  return {};
}

// ---- commands ---------------------------------------------------------------

Result<RelayCommand> CommandFromProto(const pb::RelayCommand& in) {
  RelayCommand out;
  RHIZOME_TRY(CopyId(in.corr_id(), out.corr_id, "corr id is not 16 bytes"));
  switch (in.command_case()) {
    case pb::RelayCommand::kNewQueue: {
      NewQueue c;
      if (!CopyExact(in.new_queue().recipient_auth_key(), c.recipient_auth_key)) {
        return Malformed("recipient auth key is not 32 bytes");
      }
      out.body = std::move(c);
      break;
    }
    case pb::RelayCommand::kSetQueueKey: {
      const auto& m = in.set_queue_key();
      SetQueueKey c;
      RHIZOME_TRY(CopyId(m.recipient_id(), c.recipient_id, "recipient id is not 16 bytes"));
      RHIZOME_TRY(CopySecretKey(m.send_key(), c.send_key, "send key is not 32 bytes"));
      if (!CopyExact(m.signature(), c.signature)) return Malformed("signature is not 64 bytes");
      out.body = std::move(c);
      break;
    }
    case pb::RelayCommand::kSend: {
      const auto& m = in.send();
      SendMessage c;
      RHIZOME_TRY(CopyId(m.sender_id(), c.sender_id, "sender id is not 16 bytes"));
      if (!CopyExact(m.mac(), c.mac)) return Malformed("mac is not 32 bytes");
      RHIZOME_TRY(CopyBlob(m.blob(), c.blob));
      out.body = std::move(c);
      break;
    }
    case pb::RelayCommand::kSubscribe: {
      const auto& m = in.subscribe();
      Subscribe c;
      RHIZOME_TRY(CopyId(m.recipient_id(), c.recipient_id, "recipient id is not 16 bytes"));
      if (!CopyExact(m.signature(), c.signature)) return Malformed("signature is not 64 bytes");
      out.body = c;
      break;
    }
    case pb::RelayCommand::kGet: {
      const auto& m = in.get();
      GetMessage c;
      RHIZOME_TRY(CopyId(m.recipient_id(), c.recipient_id, "recipient id is not 16 bytes"));
      if (!CopyExact(m.signature(), c.signature)) return Malformed("signature is not 64 bytes");
      out.body = c;
      break;
    }
    case pb::RelayCommand::kAck: {
      const auto& m = in.ack();
      AckMessage c;
      RHIZOME_TRY(CopyId(m.recipient_id(), c.recipient_id, "recipient id is not 16 bytes"));
      RHIZOME_TRY(CopyId(m.message_id(), c.message_id, "message id is not 16 bytes"));
      c.quiet = m.quiet();
      out.body = c;
      break;
    }
    case pb::RelayCommand::kDeleteQueue: {
      const auto& m = in.delete_queue();
      DeleteQueue c;
      RHIZOME_TRY(CopyId(m.recipient_id(), c.recipient_id, "recipient id is not 16 bytes"));
      if (!CopyExact(m.signature(), c.signature)) return Malformed("signature is not 64 bytes");
      out.body = c;
      break;
    }
    case pb::RelayCommand::kCreateBoard: {
      const auto& m = in.create_board();
      CreateBoard c;
      RHIZOME_TRY(CopyId(m.board_id(), c.board_id, "board id is not 16 bytes"));
      RHIZOME_TRY(CopySecretKey(m.read_key(), c.read_key, "board read key is not 32 bytes"));
      RHIZOME_TRY(CopySecretKey(m.write_key(), c.write_key, "board write key is not 32 bytes"));
      c.ttl_seconds = m.ttl_seconds();
      out.body = std::move(c);
      break;
    }
    case pb::RelayCommand::kAppendBoard: {
      const auto& m = in.append_board();
      AppendBoard c;
      RHIZOME_TRY(CopyId(m.board_id(), c.board_id, "board id is not 16 bytes"));
      if (!CopyExact(m.mac(), c.mac)) return Malformed("mac is not 32 bytes");
      RHIZOME_TRY(CopyBlob(m.blob(), c.blob));
      out.body = std::move(c);
      break;
    }
    case pb::RelayCommand::kReadBoard: {
      const auto& m = in.read_board();
      ReadBoard c;
      RHIZOME_TRY(CopyId(m.board_id(), c.board_id, "board id is not 16 bytes"));
      if (!CopyExact(m.mac(), c.mac)) return Malformed("mac is not 32 bytes");
      c.cursor = m.cursor();
      c.max_items = m.max_items();
      out.body = c;
      break;
    }
    case pb::RelayCommand::COMMAND_NOT_SET:
      return internal::OneofNotSet(in, "relay command has no command",
                                   "relay command is of an unknown kind");
  }
  return out;
}

void CommandToProto(const RelayCommand& in, pb::RelayCommand* out) {
  out->set_corr_id(ToField(in.corr_id));
  std::visit(Overloaded{
                 [&](const NewQueue& c) {
                   out->mutable_new_queue()->set_recipient_auth_key(ToField(c.recipient_auth_key));
                 },
                 [&](const SetQueueKey& c) {
                   auto* m = out->mutable_set_queue_key();
                   m->set_recipient_id(ToField(c.recipient_id));
                   m->set_send_key(ToField(c.send_key.expose()));
                   m->set_signature(ToField(c.signature));
                 },
                 [&](const SendMessage& c) {
                   auto* m = out->mutable_send();
                   m->set_sender_id(ToField(c.sender_id));
                   m->set_mac(ToField(c.mac));
                   m->set_blob(ToField(c.blob));
                 },
                 [&](const Subscribe& c) {
                   auto* m = out->mutable_subscribe();
                   m->set_recipient_id(ToField(c.recipient_id));
                   m->set_signature(ToField(c.signature));
                 },
                 [&](const GetMessage& c) {
                   auto* m = out->mutable_get();
                   m->set_recipient_id(ToField(c.recipient_id));
                   m->set_signature(ToField(c.signature));
                 },
                 [&](const AckMessage& c) {
                   auto* m = out->mutable_ack();
                   m->set_recipient_id(ToField(c.recipient_id));
                   m->set_message_id(ToField(c.message_id));
                   m->set_quiet(c.quiet);
                 },
                 [&](const DeleteQueue& c) {
                   auto* m = out->mutable_delete_queue();
                   m->set_recipient_id(ToField(c.recipient_id));
                   m->set_signature(ToField(c.signature));
                 },
                 [&](const CreateBoard& c) {
                   auto* m = out->mutable_create_board();
                   m->set_board_id(ToField(c.board_id));
                   m->set_read_key(ToField(c.read_key.expose()));
                   m->set_write_key(ToField(c.write_key.expose()));
                   m->set_ttl_seconds(c.ttl_seconds);
                 },
                 [&](const AppendBoard& c) {
                   auto* m = out->mutable_append_board();
                   m->set_board_id(ToField(c.board_id));
                   m->set_mac(ToField(c.mac));
                   m->set_blob(ToField(c.blob));
                 },
                 [&](const ReadBoard& c) {
                   auto* m = out->mutable_read_board();
                   m->set_board_id(ToField(c.board_id));
                   m->set_mac(ToField(c.mac));
                   m->set_cursor(c.cursor);
                   m->set_max_items(c.max_items);
                 },
             },
             in.body);
}

// ---- replies ----------------------------------------------------------------

Result<RelayReply> ReplyFromProto(const pb::RelayReply& in) {
  RelayReply out;
  if (!in.corr_id().empty()) {
    Id corr;
    RHIZOME_TRY(CopyId(in.corr_id(), corr, "corr id is not 16 bytes"));
    out.corr_id = corr;
  }
  switch (in.reply_case()) {
    case pb::RelayReply::kOk:
      out.body = RelayOk{};
      break;
    case pb::RelayReply::kQueueCreated: {
      const auto& m = in.queue_created();
      QueueCreated r;
      RHIZOME_TRY(CopyId(m.recipient_id(), r.recipient_id, "recipient id is not 16 bytes"));
      RHIZOME_TRY(CopyId(m.sender_id(), r.sender_id, "sender id is not 16 bytes"));
      out.body = r;
      break;
    }
    case pb::RelayReply::kMessage: {
      const auto& m = in.message();
      QueueMessage r;
      RHIZOME_TRY(CopyId(m.recipient_id(), r.recipient_id, "recipient id is not 16 bytes"));
      RHIZOME_TRY(CopyId(m.message_id(), r.message_id, "message id is not 16 bytes"));
      r.received_at = m.received_at();
      RHIZOME_TRY(CopyBlob(m.blob(), r.blob));
      out.body = std::move(r);
      break;
    }
    case pb::RelayReply::kBoardItems: {
      const auto& m = in.board_items();
      // Count first, before any item is copied.
      if (static_cast<std::size_t>(m.items_size()) > kMaxBoardItemsPerRead) {
        return Error{Errc::kLimitExceeded, "too many board items"};
      }
      BoardItems r;
      r.items.reserve(static_cast<std::size_t>(m.items_size()));
      for (const auto& item : m.items()) {
        BoardItem b;
        b.seq = item.seq();
        b.received_at = item.received_at();
        RHIZOME_TRY(CopyBlob(item.blob(), b.blob));
        r.items.push_back(std::move(b));
      }
      r.next_cursor = m.next_cursor();
      out.body = std::move(r);
      break;
    }
    case pb::RelayReply::kError:
      RHIZOME_TRY(CheckEnum(in.error().code(), "relay error code is out of range"));
      out.body = RelayError{static_cast<RelayErrorCode>(static_cast<std::uint32_t>(in.error().code()))};
      break;
    case pb::RelayReply::kKeyStatement: {
      const auto& m = in.key_statement();
      RelayKeyStatement r;
      r.serial = m.serial();
      if (!CopyExact(m.noise_key(), r.noise_key)) return Malformed("noise key is not 32 bytes");
      if (!m.psk().empty()) {
        RHIZOME_TRY(CopySecretKey(m.psk(), r.psk, "key statement psk is not 32 bytes"));
      }
      r.valid_from = m.valid_from();
      if (!CopyExact(m.signature(), r.signature)) return Malformed("signature is not 64 bytes");
      out.body = std::move(r);
      break;
    }
    case pb::RelayReply::REPLY_NOT_SET:
      return internal::OneofNotSet(in, "relay reply has no reply", "relay reply is of an unknown kind");
  }
  return out;
}

void ReplyToProto(const RelayReply& in, pb::RelayReply* out) {
  if (in.corr_id) out->set_corr_id(ToField(*in.corr_id));
  std::visit(Overloaded{
                 [&](const RelayOk&) { out->mutable_ok(); },
                 [&](const QueueCreated& r) {
                   auto* m = out->mutable_queue_created();
                   m->set_recipient_id(ToField(r.recipient_id));
                   m->set_sender_id(ToField(r.sender_id));
                 },
                 [&](const QueueMessage& r) {
                   auto* m = out->mutable_message();
                   m->set_recipient_id(ToField(r.recipient_id));
                   m->set_message_id(ToField(r.message_id));
                   m->set_received_at(r.received_at);
                   m->set_blob(ToField(r.blob));
                 },
                 [&](const BoardItems& r) {
                   auto* m = out->mutable_board_items();
                   for (const auto& item : r.items) {
                     auto* b = m->add_items();
                     b->set_seq(item.seq);
                     b->set_received_at(item.received_at);
                     b->set_blob(ToField(item.blob));
                   }
                   m->set_next_cursor(r.next_cursor);
                 },
                 [&](const RelayError& r) {
                   out->mutable_error()->set_code(static_cast<pb::RelayErrorCode>(
                       static_cast<std::int32_t>(static_cast<std::uint32_t>(r.code))));
                 },
                 [&](const RelayKeyStatement& r) {
                   auto* m = out->mutable_key_statement();
                   m->set_serial(r.serial);
                   m->set_noise_key(ToField(r.noise_key));
                   if (!r.psk.empty()) m->set_psk(ToField(r.psk.expose()));
                   m->set_valid_from(r.valid_from);
                   m->set_signature(ToField(r.signature));
                 },
             },
             in.body);
}

}  // namespace

namespace internal {
void WipeSecrets(pb::TransportMessage& message) {
  if (message.has_relay_command()) {
    auto* c = message.mutable_relay_command();
    if (c->has_set_queue_key()) WipeField(c->mutable_set_queue_key()->mutable_send_key());
    if (c->has_create_board()) {
      WipeField(c->mutable_create_board()->mutable_read_key());
      WipeField(c->mutable_create_board()->mutable_write_key());
    }
  }
  if (message.has_relay_reply() && message.relay_reply().has_key_statement()) {
    WipeField(message.mutable_relay_reply()->mutable_key_statement()->mutable_psk());
  }
}
}  // namespace internal

Status ValidateTransportMessage(const TransportMessage& message) {
  return std::visit(Overloaded{
                        [](const RelayCommand& m) { return ValidateRelayCommand(m); },
                        [](const RelayReply& m) { return ValidateRelayReply(m); },
                        [](const PeerMessage& m) -> Status {
                          if (IsAllZero(m.delivery_id)) return Malformed("delivery id is all zeros");
                          if (m.blob.empty()) return Malformed("blob is empty");
                          if (m.blob.size() > kMaxBlobBytes) {
                            return Error{Errc::kLimitExceeded, "blob is too large"};
                          }
                          return {};
                        },
                        [](const PeerAck& m) -> Status {
                          if (IsAllZero(m.delivery_id)) return Malformed("delivery id is all zeros");
                          return {};
                        },
                        [](const Ping&) -> Status { return {}; },
                        [](const Pong&) -> Status { return {}; },
                        [](const Close& m) -> Status {
                          const auto reason = static_cast<std::uint32_t>(m.reason);
                          if (reason == 0 || reason > kMaxEnumValue) {
                            return Malformed("close reason is out of range");
                          }
                          return {};
                        },
                    },
                    message);
}

namespace {

// ---- the relay's per-message frames, without protobuf's objects ------------
// (transport.h). Protobuf's wire format: a field is a tag byte (field number
// << 3 | wire type; 2 = length-delimited, 0 = varint) then, for type 2, a
// varint length and the bytes.

// Every length inside a transport message is at most kMaxTransportMessageBytes
// (below 2^16), so three varint bytes (up to 2^21 - 1) suffice; a longer or
// non-shortest varint is left to protobuf.
bool ReadShortVarint(ByteSpan in, std::size_t& pos, std::size_t& value) {
  value = 0;
  for (int i = 0; i < 3; ++i) {
    if (pos >= in.size()) return false;
    const std::uint8_t b = in[pos++];
    value |= static_cast<std::size_t>(b & 0x7f) << (7 * i);
    if ((b & 0x80) == 0) return b != 0 || i == 0;  // a trailing zero byte is not shortest
  }
  return false;
}

// The length-delimited field at `pos` if its tag byte is `tag`.
bool ReadField(ByteSpan in, std::size_t& pos, std::uint8_t tag, ByteSpan& field) {
  if (pos >= in.size() || in[pos] != tag) return false;
  ++pos;
  std::size_t length = 0;
  if (!ReadShortVarint(in, pos, length) || length > in.size() - pos) return false;
  field = in.subspan(pos, length);
  pos += length;
  return true;
}

template <std::size_t N>
bool ReadFixedField(ByteSpan in, std::size_t& pos, std::uint8_t tag, ByteArray<N>& out) {
  ByteSpan field;
  if (!ReadField(in, pos, tag, field) || field.size() != N) return false;
  std::copy(field.begin(), field.end(), out.begin());
  return true;
}

// TransportMessage{relay_command = 1 {corr_id = 1, send = 4 {sender_id = 1,
// mac = 2, blob = 3}}} or {..., ack = 7 {recipient_id = 1, message_id = 2
// [, quiet = 3 (true)]}},
// encoded exactly as protobuf encodes it; nullopt for anything else,
// including well-formed encodings protobuf would also accept (fields out of
// order, repeated or unknown, longer varints, an empty blob field): those
// take the protobuf path, so this one never decides a different result.
std::optional<RelayCommand> ParseCanonicalSendOrAck(ByteSpan bytes) {
  constexpr std::uint8_t kField1 = 0x0A, kField2 = 0x12, kField3 = 0x1A;
  constexpr std::uint8_t kSendField = 0x22, kAckField = 0x3A;  // fields 4 and 7
  std::size_t pos = 0;
  ByteSpan command;
  if (!ReadField(bytes, pos, kField1, command) || pos != bytes.size()) return std::nullopt;
  RelayCommand out;
  pos = 0;
  if (!ReadFixedField(command, pos, kField1, out.corr_id)) return std::nullopt;
  if (pos >= command.size()) return std::nullopt;
  const std::uint8_t which = command[pos];
  ByteSpan body;
  if (!ReadField(command, pos, which, body) || pos != command.size()) return std::nullopt;
  std::size_t at = 0;
  if (which == kSendField) {
    SendMessage c;
    ByteSpan blob;
    if (!ReadFixedField(body, at, kField1, c.sender_id) || !ReadFixedField(body, at, kField2, c.mac) ||
        !ReadField(body, at, kField3, blob) || at != body.size() || blob.empty() ||
        blob.size() > kMaxBlobBytes) {
      return std::nullopt;
    }
    c.blob.assign(blob.begin(), blob.end());
    out.body = std::move(c);
    return out;
  }
  if (which == kAckField) {
    AckMessage c;
    if (!ReadFixedField(body, at, kField1, c.recipient_id) ||
        !ReadFixedField(body, at, kField2, c.message_id)) {
      return std::nullopt;
    }
    // quiet = true is written as its tag and 1; protobuf writes nothing for
    // false (an explicit 0, or any other value, takes the protobuf path).
    constexpr std::uint8_t kQuietTag = 0x18;  // field 3, varint
    if (body.size() - at == 2 && body[at] == kQuietTag && body[at + 1] == 1) {
      c.quiet = true;
      at += 2;
    }
    if (at != body.size()) return std::nullopt;
    out.body = c;
    return out;
  }
  return std::nullopt;
}

std::size_t VarintSize(std::uint64_t v) {
  std::size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

void PutVarint(Bytes& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<std::uint8_t>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<std::uint8_t>(v));
}

void PutField(Bytes& out, std::uint8_t tag, ByteSpan data) {
  out.push_back(tag);
  PutVarint(out, data.size());
  out.insert(out.end(), data.begin(), data.end());
}

// The length of a length-delimited field holding `n` bytes, tag included.
std::size_t FieldSize(std::size_t n) { return 1 + VarintSize(n) + n; }

// TransportMessage{relay_reply = 2 {corr_id = 1, ok = 2 {}}} or {...,
// message = 4 {recipient_id = 1, message_id = 2, received_at = 3, blob = 4}},
// as protobuf writes them (fields in number order; a zero received_at and an
// empty blob omitted, an empty ok written), into `out` (replacing what it
// held, keeping its capacity). false for other replies (`out` untouched).
bool SerializeOkOrQueueMessage(const RelayReply& reply, Bytes& out) {
  const auto* message = std::get_if<QueueMessage>(&reply.body);
  if (message == nullptr && !std::holds_alternative<RelayOk>(reply.body)) return false;
  std::size_t message_size = 0;
  if (message != nullptr) {
    message_size = FieldSize(kIdBytes) * 2 +
                   (message->received_at != 0 ? 1 + VarintSize(message->received_at) : 0) +
                   (message->blob.empty() ? 0 : FieldSize(message->blob.size()));
  }
  const std::size_t reply_size = (reply.corr_id ? FieldSize(kIdBytes) : 0) + FieldSize(message_size);
  const std::size_t total = FieldSize(reply_size);
  if (total > kMaxTransportMessageBytes) return false;  // protobuf's path names the error
  out.clear();
  out.reserve(total);
  out.push_back(0x12);  // relay_reply = 2
  PutVarint(out, reply_size);
  if (reply.corr_id) PutField(out, 0x0A, *reply.corr_id);
  if (message == nullptr) {
    out.push_back(0x12);  // ok = 2, empty
    out.push_back(0x00);
    return true;
  }
  out.push_back(0x22);  // message = 4
  PutVarint(out, message_size);
  PutField(out, 0x0A, message->recipient_id);
  PutField(out, 0x12, message->message_id);
  if (message->received_at != 0) {
    out.push_back(0x18);  // received_at = 3, varint
    PutVarint(out, message->received_at);
  }
  if (!message->blob.empty()) PutField(out, 0x22, message->blob);
  return true;
}

}  // namespace

Result<TransportMessage> ParseTransportMessage(ByteSpan bytes) {
  if (bytes.size() <= kMaxTransportMessageBytes) {
    if (auto command = ParseCanonicalSendOrAck(bytes)) {
      TransportMessage out = std::move(*command);
      RHIZOME_TRY(ValidateTransportMessage(out));
      return out;
    }
  }
  return internal::ParseTransportMessageWithProtobuf(bytes);
}

Result<Bytes> SerializeTransportMessage(const TransportMessage& message) {
  Bytes out;
  RHIZOME_TRY(SerializeTransportMessageInto(message, out));
  return out;
}

Status SerializeTransportMessageInto(const TransportMessage& message, Bytes& out) {
  if (const auto* reply = std::get_if<RelayReply>(&message)) {
    RHIZOME_TRY(ValidateTransportMessage(message));
    if (SerializeOkOrQueueMessage(*reply, out)) return {};
  }
  auto bytes = internal::SerializeTransportMessageWithProtobuf(message);
  if (!bytes) return bytes.error();
  out = std::move(*bytes);
  return {};
}

Result<TransportMessage> internal::ParseTransportMessageWithProtobuf(ByteSpan bytes) {
  pb::TransportMessage message;
  internal::ScopedWipe wipe(message);
  RHIZOME_TRY(internal::ParseBounded(message, bytes, kMaxTransportMessageBytes,
                                     "transport message is too large",
                                     "transport message does not parse"));
  TransportMessage out;
  switch (message.body_case()) {
    case pb::TransportMessage::kRelayCommand: {
      auto command = CommandFromProto(message.relay_command());
      if (!command) return command.error();
      out = std::move(command).value();
      break;
    }
    case pb::TransportMessage::kRelayReply: {
      auto reply = ReplyFromProto(message.relay_reply());
      if (!reply) return reply.error();
      out = std::move(reply).value();
      break;
    }
    case pb::TransportMessage::kPeerMessage: {
      PeerMessage m;
      RHIZOME_TRY(CopyId(message.peer_message().delivery_id(), m.delivery_id,
                         "delivery id is not 16 bytes"));
      RHIZOME_TRY(CopyBlob(message.peer_message().blob(), m.blob));
      out = std::move(m);
      break;
    }
    case pb::TransportMessage::kPeerAck: {
      PeerAck m;
      RHIZOME_TRY(CopyId(message.peer_ack().delivery_id(), m.delivery_id,
                         "delivery id is not 16 bytes"));
      out = m;
      break;
    }
    case pb::TransportMessage::kPing:
      out = Ping{};
      break;
    case pb::TransportMessage::kPong:
      out = Pong{};
      break;
    case pb::TransportMessage::kClose:
      RHIZOME_TRY(CheckEnum(message.close().reason(), "close reason is out of range"));
      out = Close{static_cast<CloseReason>(static_cast<std::uint32_t>(message.close().reason()))};
      break;
    case pb::TransportMessage::BODY_NOT_SET:
      return internal::OneofNotSet(message, "transport message is empty",
                                   "transport message is of an unknown kind");
  }
  RHIZOME_TRY(ValidateTransportMessage(out));
  return out;
}

Result<Bytes> internal::SerializeTransportMessageWithProtobuf(const TransportMessage& message) {
  RHIZOME_TRY(ValidateTransportMessage(message));
  pb::TransportMessage out;
  internal::ScopedWipe wipe(out);
  std::visit(Overloaded{
                 [&](const RelayCommand& m) { CommandToProto(m, out.mutable_relay_command()); },
                 [&](const RelayReply& m) { ReplyToProto(m, out.mutable_relay_reply()); },
                 [&](const PeerMessage& m) {
                   out.mutable_peer_message()->set_delivery_id(ToField(m.delivery_id));
                   out.mutable_peer_message()->set_blob(ToField(m.blob));
                 },
                 [&](const PeerAck& m) { out.mutable_peer_ack()->set_delivery_id(ToField(m.delivery_id)); },
                 [&](const Ping&) { out.mutable_ping(); },
                 [&](const Pong&) { out.mutable_pong(); },
                 [&](const Close& m) {
                   out.mutable_close()->set_reason(static_cast<pb::CloseReason>(
                       static_cast<std::int32_t>(static_cast<std::uint32_t>(m.reason))));
                 },
             },
             message);
  return internal::SerializeBounded(out, kMaxTransportMessageBytes, "transport message is too large");
}

}  // namespace rhizome::protocol
