#include "api.h"

#include <google/protobuf/util/json_util.h>

#include <chrono>

#include "rhizome/crypto/secret.h"

namespace rhizome::client::api {

namespace {

struct CodeName {
  Errc code;
  const char* name;
};
constexpr CodeName kCodeNames[] = {
    {Errc::kInvalidArgument, "invalid_argument"},
    {Errc::kNotFound, "not_found"},
    {Errc::kAlreadyExists, "already_exists"},
    {Errc::kLimitExceeded, "limit_exceeded"},
    {Errc::kMalformed, "malformed"},
    {Errc::kUnsupported, "unsupported"},
    {Errc::kAuthenticationFailed, "authentication_failed"},
    {Errc::kCorrupt, "corrupt"},
    {Errc::kCryptoFailure, "crypto_failure"},
    {Errc::kWrongPassphrase, "wrong_passphrase"},
    {Errc::kIo, "io"},
    {Errc::kInternal, "internal"},
};

const char* CodeString(Errc code) {
  for (const auto& c : kCodeNames) {
    if (c.code == code) return c.name;
  }
  return "internal";
}

cli::v1::Relay ToProto(const RelayInfo& r) {
  cli::v1::Relay p;
  p.set_address(r.address);
  p.set_added_at(r.added_at);
  return p;
}

cli::v1::Invite ToProto(const InviteInfo& i) {
  cli::v1::Invite p;
  p.set_id(i.id);
  p.set_code(i.code);
  p.set_expires_at(i.expires_at);
  p.set_uses_left(i.uses_left);
  return p;
}

v1::Response Done(std::uint64_t id, const char* message) {
  v1::Response r;
  r.set_id(id);
  r.mutable_done()->set_message(message);
  return r;
}

// A network operation's budget: the sync timeout, or this for the others.
constexpr auto kNetworkTimeout = std::chrono::seconds(20);

}  // namespace

Errc ErrcFromCode(std::string_view code) {
  for (const auto& c : kCodeNames) {
    if (code == c.name) return c.code;
  }
  return Errc::kIo;
}

cli::v1::Message ToProto(const MessageInfo& m) {
  cli::v1::Message p;
  p.set_contact(m.contact);
  p.set_outgoing(m.outgoing);
  p.set_seq(m.seq);
  p.set_text(m.text);
  p.set_sent_at_ms(m.sent_at_ms);
  p.set_stored_at(m.stored_at);
  p.set_state(MessageStateName(m.state));
  return p;
}

cli::v1::Contact ToProto(const ContactInfo& c) {
  cli::v1::Contact p;
  p.set_name(c.alias);
  p.set_status(ContactStatusName(c.status));
  p.set_fingerprint(c.fingerprint);
  p.set_verified(c.verified);
  p.set_expire_seconds(c.expire_seconds);
  p.set_created_at(c.created_at);
  p.set_direct_address(c.direct_address);
  p.set_key_refused_at(c.key_refused_at);
  return p;
}

void WipeLine(std::string& line) noexcept {
  crypto::Wipe(MutableByteSpan(reinterpret_cast<std::uint8_t*>(line.data()), line.size()));
  line.clear();
}

Result<v1::Request> ParseRequest(std::string_view line) {
  if (line.size() > kMaxApiLineBytes) return Error{Errc::kLimitExceeded, "request is too large"};
  v1::Request req;
  google::protobuf::util::JsonParseOptions opts;
  opts.ignore_unknown_fields = false;
  if (!google::protobuf::util::JsonStringToMessage(std::string(line), &req, opts).ok()) {
    return Error{Errc::kMalformed, "request is not valid JSON for rhizome.api.v1.Request"};
  }
  if (req.command_case() == v1::Request::COMMAND_NOT_SET) {
    return Error{Errc::kInvalidArgument, "request has no command"};
  }
  return req;
}

std::string FormatResponse(const v1::Response& response) {
  std::string out;
  google::protobuf::util::JsonPrintOptions opts;
  opts.always_print_primitive_fields = true;
  (void)google::protobuf::util::MessageToJsonString(response, &out, opts);
  return out;
}

Result<v1::Response> ParseResponse(std::string_view line) {
  if (line.size() > kMaxApiLineBytes) return Error{Errc::kLimitExceeded, "response is too large"};
  v1::Response r;
  google::protobuf::util::JsonParseOptions opts;
  opts.ignore_unknown_fields = true;  // a newer daemon may add fields
  if (!google::protobuf::util::JsonStringToMessage(std::string(line), &r, opts).ok()) {
    return Error{Errc::kMalformed, "the daemon's answer is not valid"};
  }
  return r;
}

v1::Response ErrorResponse(std::uint64_t id, const Error& error) {
  v1::Response r;
  r.set_id(id);
  r.mutable_error()->set_code(CodeString(error.code));
  r.mutable_error()->set_message(error.message);
  return r;
}

v1::Response Execute(Messenger& m, const v1::Request& req) {
  const std::uint64_t id = req.id();
  v1::Response r;
  r.set_id(id);
  switch (req.command_case()) {
    case v1::Request::kRelayAdd: {
      auto added = m.AddRelay(req.relay_add().address());
      if (!added) return ErrorResponse(id, added.error());
      *r.mutable_relay() = ToProto(*added);
      return r;
    }
    case v1::Request::kRelayRemove: {
      if (auto st = m.RemoveRelay(req.relay_remove().address()); !st) {
        return ErrorResponse(id, st.error());
      }
      return Done(id, "Relay removed from the profile. Existing contacts keep the mailboxes they "
                      "have.");
    }
    case v1::Request::kRelayList: {
      auto relays = m.ListRelays();
      if (!relays) return ErrorResponse(id, relays.error());
      for (const auto& x : *relays) *r.mutable_relays()->add_relays() = ToProto(x);
      r.mutable_relays();  // set even when empty
      return r;
    }
    case v1::Request::kInviteCreate: {
      const auto& c = req.invite_create();
      const std::uint32_t uses = c.uses() == 0 ? 1 : c.uses();
      const std::uint64_t life = c.lifetime_seconds() == 0 ? kDefaultInviteSeconds
                                                           : c.lifetime_seconds();
      auto made = m.CreateInvite(uses, life, kNetworkTimeout, c.direct());
      if (!made) return ErrorResponse(id, made.error());
      *r.mutable_invite() = ToProto(*made);
      return r;
    }
    case v1::Request::kInviteRevoke: {
      if (auto st = m.RevokeInvite(req.invite_revoke().id(), kNetworkTimeout); !st) {
        return ErrorResponse(id, st.error());
      }
      return Done(id, "Invite revoked: its key is destroyed and its request queue deleted.");
    }
    case v1::Request::kInviteList: {
      auto invites = m.ListInvites();
      if (!invites) return ErrorResponse(id, invites.error());
      r.mutable_invites();
      for (const auto& x : *invites) *r.mutable_invites()->add_invites() = ToProto(x);
      return r;
    }
    case v1::Request::kAccept: {
      auto c = m.AcceptInvite(req.accept().code(), req.accept().name(), kNetworkTimeout);
      if (!c) return ErrorResponse(id, c.error());
      *r.mutable_contact() = ToProto(*c);
      return r;
    }
    case v1::Request::kContacts: {
      auto contacts = m.ListContacts();
      if (!contacts) return ErrorResponse(id, contacts.error());
      r.mutable_contacts();
      for (const auto& x : *contacts) *r.mutable_contacts()->add_contacts() = ToProto(x);
      return r;
    }
    case v1::Request::kVerify: {
      auto s = m.Safety(req.verify().contact(), req.verify().confirm());
      if (!s) return ErrorResponse(id, s.error());
      auto* p = r.mutable_safety();
      p->set_contact(s->contact);
      p->set_safety_number(s->safety_number);
      p->set_verified(s->verified);
      p->set_key_refused_at(s->key_refused_at);
      return r;
    }
    case v1::Request::kSend: {
      auto sent = m.Send(req.send().contact(), req.send().text());
      if (!sent) return ErrorResponse(id, sent.error());
      *r.mutable_message() = ToProto(*sent);
      return r;
    }
    case v1::Request::kRead: {
      std::optional<std::string_view> who;
      if (!req.read().contact().empty()) who = req.read().contact();
      auto msgs = m.Read(who);
      if (!msgs) return ErrorResponse(id, msgs.error());
      r.mutable_messages();
      for (const auto& x : *msgs) *r.mutable_messages()->add_messages() = ToProto(x);
      return r;
    }
    case v1::Request::kExpire: {
      if (auto st = m.SetExpiry(req.expire().contact(), req.expire().seconds()); !st) {
        return ErrorResponse(id, st.error());
      }
      return Done(id, req.expire().seconds() == 0
                          ? "Disappearing messages off for this conversation."
                          : "New messages in this conversation now disappear when due.");
    }
    case v1::Request::kSync: {
      std::uint32_t secs = req.sync().timeout_seconds();
      if (secs == 0) secs = kDefaultSyncSeconds;
      if (secs > kMaxSyncSeconds) {
        return ErrorResponse(id, Error{Errc::kInvalidArgument, "sync timeout is 1 to 3600 seconds"});
      }
      auto rep = m.Sync(std::chrono::seconds(secs));
      if (!rep) return ErrorResponse(id, rep.error());
      auto* p = r.mutable_sync();
      p->set_received(rep->received);
      p->set_uploaded(rep->uploaded);
      p->set_receipts(rep->receipts);
      p->set_contacts_confirmed(rep->contacts_confirmed);
      p->set_relays_unreachable(rep->relays_unreachable);
      p->set_dropped(rep->dropped);
      return r;
    }
    case v1::Request::kSubscribe:
    case v1::Request::kStatus:
      return ErrorResponse(id, Error{Errc::kInvalidArgument, "this request needs the daemon"});
    case v1::Request::COMMAND_NOT_SET:
      break;
  }
  return ErrorResponse(id, Error{Errc::kInvalidArgument, "request has no command"});
}

}  // namespace rhizome::client::api
