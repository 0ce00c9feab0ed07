#include "rhizome/protocol/relay_key_statement.h"

#include <algorithm>

namespace rhizome::protocol {

namespace {

Error Malformed(const char* message) { return Error{Errc::kMalformed, message}; }

void AppendU64(Bytes& out, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<std::uint8_t>((v >> shift) & 0xff));
  }
}

std::uint64_t ReadU64(ByteSpan in) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8; ++i) v = (v << 8) | in[i];
  return v;
}

}  // namespace

RelayKeyStatement RelayKeyStatement::Clone() const {
  RelayKeyStatement copy;
  copy.serial = serial;
  copy.noise_key = noise_key;
  copy.psk = psk.Clone();
  copy.valid_from = valid_from;
  copy.signature = signature;
  return copy;
}

Status ValidateRelayKeyStatement(const RelayKeyStatement& statement) {
  if (statement.serial == 0) return Malformed("key statement serial is 0");
  if (IsAllZero(statement.noise_key)) return Malformed("key statement noise key is all zeros");
  if (!statement.psk.empty() &&
      (statement.psk.size() != kRelayPskBytes || IsAllZero(statement.psk.expose()))) {
    return Malformed("key statement psk is not 32 non-zero bytes");
  }
  return {};
}

Bytes RelayKeyStatementMessage(const RelayKeyStatement& statement) {
  Bytes out;
  out.reserve(kMaxRelayKeyStatementBytes);
  Append(out, AsBytes(kRelayKeyStatementContext));
  AppendU64(out, statement.serial);
  Append(out, statement.noise_key);
  out.push_back(static_cast<std::uint8_t>(statement.psk.size()));
  Append(out, statement.psk.expose());
  AppendU64(out, statement.valid_from);
  return out;
}

Status SignRelayKeyStatement(RelayKeyStatement& statement,
                             const crypto::Ed25519KeyPair& signing_key) {
  RHIZOME_TRY(ValidateRelayKeyStatement(statement));
  if (signing_key.secret_key.size() != crypto::kEd25519SecretKeyBytes) {
    return Error{Errc::kInvalidArgument, "the relay signing key is not available"};
  }
  Bytes message = RelayKeyStatementMessage(statement);
  auto signature = crypto::Ed25519Sign(signing_key.secret_key, message);
  crypto::Wipe(message);  // it holds the psk
  if (!signature) return signature.error();
  statement.signature = *signature;
  return {};
}

Status VerifyRelayKeyStatement(const RelayKeyStatement& statement, ByteSpan relay_signing_key) {
  RHIZOME_TRY(ValidateRelayKeyStatement(statement));
  if (relay_signing_key.size() != kKeyBytes) {
    return Error{Errc::kInvalidArgument, "relay signing key is not 32 bytes"};
  }
  Bytes message = RelayKeyStatementMessage(statement);
  Status status = crypto::Ed25519Verify(relay_signing_key, message, statement.signature);
  crypto::Wipe(message);  // it holds the psk
  if (!status) return Error{Errc::kAuthenticationFailed, "relay key statement does not verify"};
  return {};
}

Result<crypto::SecretBytes> EncodeRelayKeyStatement(const RelayKeyStatement& statement) {
  RHIZOME_TRY(ValidateRelayKeyStatement(statement));
  Bytes message = RelayKeyStatementMessage(statement);
  crypto::SecretBytes out(message.size() + kSignatureBytes);
  auto o = out.expose_mut();
  std::copy(message.begin(), message.end(), o.begin());
  std::copy(statement.signature.begin(), statement.signature.end(),
            o.begin() + static_cast<std::ptrdiff_t>(message.size()));
  crypto::Wipe(message);
  return out;
}

Result<RelayKeyStatement> ParseRelayKeyStatement(ByteSpan bytes) {
  if (bytes.size() > kMaxRelayKeyStatementBytes) {
    return Error{Errc::kLimitExceeded, "key statement is too long"};
  }
  if (bytes.size() != kRelayKeyStatementOpenBytes && bytes.size() != kMaxRelayKeyStatementBytes) {
    return Malformed("key statement has the wrong size");
  }
  const std::size_t ctx = kRelayKeyStatementContext.size();
  if (!std::equal(kRelayKeyStatementContext.begin(), kRelayKeyStatementContext.end(),
                  bytes.begin(), [](char c, std::uint8_t b) {
                    return static_cast<std::uint8_t>(c) == b;
                  })) {
    return Malformed("key statement has the wrong context");
  }
  RelayKeyStatement out;
  std::size_t pos = ctx;
  out.serial = ReadU64(bytes.subspan(pos, 8));
  pos += 8;
  std::copy_n(bytes.begin() + static_cast<std::ptrdiff_t>(pos), kKeyBytes, out.noise_key.begin());
  pos += kKeyBytes;
  const std::size_t psk_len = bytes[pos++];
  if (psk_len != 0 && psk_len != kRelayPskBytes) {
    return Malformed("key statement psk length is not 0 or 32");
  }
  // The total size must be exactly the form psk_len selects: nothing trails.
  const std::size_t expected = kRelayKeyStatementOpenBytes + psk_len;
  if (bytes.size() != expected) return Malformed("key statement has the wrong size");
  if (psk_len > 0) {
    out.psk = crypto::SecretBytes::CopyFrom(bytes.subspan(pos, psk_len));
    pos += psk_len;
  }
  out.valid_from = ReadU64(bytes.subspan(pos, 8));
  pos += 8;
  std::copy_n(bytes.begin() + static_cast<std::ptrdiff_t>(pos), kSignatureBytes,
              out.signature.begin());
  RHIZOME_TRY(ValidateRelayKeyStatement(out));
  return out;
}

Result<RelayAddress> ApplyKeyStatement(const RelayAddress& address,
                                       const RelayKeyStatement& statement,
                                       std::uint64_t followed_serial) {
  if (!ValidateRelayAddress(address)) {
    return Error{Errc::kInvalidArgument, "the stored relay address is not valid"};
  }
  // SECURITY: verify before looking at anything the statement claims.
  RHIZOME_TRY(VerifyRelayKeyStatement(statement, address.signing_key));
  if (statement.serial <= followed_serial) {
    return Error{Errc::kAlreadyExists, "relay key statement is not newer than the one followed"};
  }
  RelayAddress updated = address.Clone();
  updated.noise_key = statement.noise_key;
  updated.psk = statement.psk.Clone();
  RHIZOME_TRY(ValidateRelayAddress(updated));
  return updated;
}

}  // namespace rhizome::protocol
