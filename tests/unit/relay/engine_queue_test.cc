// RelayEngine: mailboxes (NEW, KEY, SEND, SUB, GET, ACK, DEL), their
// authorization and every refusal.
#include <set>

#include "engine_internal.h"
#include "relay_test_util.h"

namespace rhizome::relay::testing {
namespace {

using RelayQueueTest = RelayTest;

// ---- happy paths -----------------------------------------------------------

TEST_F(RelayQueueTest, NewQueueReturnsDistinctRandomIds) {
  Conn c = Connect();
  TestQueue q1 = CreateQueue(c);
  TestQueue q2 = CreateQueue(c);
  EXPECT_NE(q1.recipient_id, q1.sender_id);
  EXPECT_NE(q1.recipient_id, q2.recipient_id);
  EXPECT_NE(q1.sender_id, q2.sender_id);
  EXPECT_FALSE(protocol::IsAllZero(q1.recipient_id));
  EXPECT_FALSE(protocol::IsAllZero(q1.sender_id));
  EXPECT_EQ(engine_->stats().queues, 2u);
}

TEST_F(RelayQueueTest, SendGetAckRoundTrip) {
  Conn recipient = Connect();
  Conn sender = Connect();
  TestQueue q = CreateQueue(recipient);
  const Bytes blob = Blob(1024 + 72);
  ASSERT_TRUE(IsOk(Call(sender, SendCmd(sender, q, blob))));

  auto got = Call(recipient, GetCmd(recipient, q));
  auto* m = std::get_if<protocol::QueueMessage>(&got.body);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->recipient_id, q.recipient_id);
  EXPECT_EQ(m->blob, blob);
  EXPECT_FALSE(protocol::IsAllZero(m->message_id));

  // GET again without ACK: the same oldest message.
  auto again = Call(recipient, GetCmd(recipient, q));
  auto* m2 = std::get_if<protocol::QueueMessage>(&again.body);
  ASSERT_NE(m2, nullptr);
  EXPECT_EQ(m2->message_id, m->message_id);

  EXPECT_TRUE(IsOk(Call(recipient, AckCmd(q, m->message_id))));
  EXPECT_TRUE(IsOk(Call(recipient, GetCmd(recipient, q))));  // empty queue: Ok
  EXPECT_EQ(CountStoredMessages(data_dir()), 0);
}

TEST_F(RelayQueueTest, ArrivalTimeIsRoundedDown) {
  Conn c = Connect();
  TestQueue q = CreateQueue(c);
  ASSERT_TRUE(IsOk(Call(c, SendCmd(c, q, Blob(256)), kT0 + 59)));
  auto got = Call(c, GetCmd(c, q), kT0 + 59);
  auto* m = std::get_if<protocol::QueueMessage>(&got.body);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->received_at, kT0);  // limits_.arrival_rounding_seconds == 60
}

TEST_F(RelayQueueTest, SubscribePushesStoredMessagesInOrderThenNewOnes) {
  Conn recipient = Connect();
  Conn sender = Connect();
  TestQueue q = CreateQueue(recipient);
  std::vector<Bytes> blobs;
  for (int i = 0; i < 3; ++i) {
    blobs.push_back(Blob(100 + static_cast<std::size_t>(i)));
    ASSERT_TRUE(IsOk(Call(sender, SendCmd(sender, q, blobs.back()))));
  }
  ASSERT_TRUE(IsOk(Call(recipient, SubCmd(recipient, q))));
  auto pushed = TakePushes(recipient);
  ASSERT_EQ(pushed.size(), 3u);
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(pushed[static_cast<std::size_t>(i)].blob, blobs[static_cast<std::size_t>(i)]);

  const Bytes fresh = Blob(500);
  ASSERT_TRUE(IsOk(Call(sender, SendCmd(sender, q, fresh))));
  auto live = TakePushes(recipient);
  ASSERT_EQ(live.size(), 1u);
  EXPECT_EQ(live[0].blob, fresh);
  EXPECT_EQ(live[0].recipient_id, q.recipient_id);
  EXPECT_TRUE(TakePushes(sender).empty());
}

TEST_F(RelayQueueTest, PushComesOutOfTheSameFlushAsTheSendReply) {
  Conn recipient = Connect();
  Conn sender = Connect();
  TestQueue q = CreateQueue(recipient);
  ASSERT_TRUE(IsOk(Call(recipient, SubCmd(recipient, q))));
  auto cmd = SendCmd(sender, q, Blob(300));
  const Id corr = cmd.corr_id;
  engine_->OnCommand(sender.id, std::move(cmd), kT0);
  auto out = Flush();
  ASSERT_EQ(out.size(), 2u);
  // Pushes not taken early come ahead of the replies (engine.h TakeEarly).
  EXPECT_EQ(out[0].connection, recipient.id);
  EXPECT_FALSE(out[0].reply.corr_id.has_value());
  EXPECT_TRUE(std::holds_alternative<protocol::QueueMessage>(out[0].reply.body));
  EXPECT_EQ(out[1].connection, sender.id);
  EXPECT_EQ(out[1].reply.corr_id, corr);
  for (const auto& o : out) EXPECT_TRUE(protocol::ValidateRelayReply(o.reply).ok());
}

TEST_F(RelayQueueTest, UnacknowledgedMessagesAreRedeliveredAfterReconnect) {
  Conn recipient = Connect();
  Conn sender = Connect();
  TestQueue q = CreateQueue(recipient);
  ASSERT_TRUE(IsOk(Call(recipient, SubCmd(recipient, q))));
  ASSERT_TRUE(IsOk(Call(sender, SendCmd(sender, q, Blob(200)))));
  ASSERT_TRUE(IsOk(Call(sender, SendCmd(sender, q, Blob(201)))));
  auto first = TakePushes(recipient);
  ASSERT_EQ(first.size(), 2u);
  ASSERT_TRUE(IsOk(Call(recipient, AckCmd(q, first[0].message_id))));
  engine_->OnDisconnect(recipient.id);

  Conn again = Connect();
  ASSERT_TRUE(IsOk(Call(again, SubCmd(again, q))));
  auto second = TakePushes(again);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].message_id, first[1].message_id);
  EXPECT_EQ(second[0].blob, first[1].blob);
}

TEST_F(RelayQueueTest, ResubscribingOnTheSameConnectionRedeliversUnacked) {
  Conn c = Connect();
  TestQueue q = CreateQueue(c);
  ASSERT_TRUE(IsOk(Call(c, SendCmd(c, q, Blob(20)))));
  ASSERT_TRUE(IsOk(Call(c, SubCmd(c, q))));
  auto first = TakePushes(c);
  ASSERT_EQ(first.size(), 1u);
  ASSERT_TRUE(IsOk(Call(c, SubCmd(c, q))));
  auto second = TakePushes(c);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].message_id, first[0].message_id);
}

TEST_F(RelayQueueTest, NewSubscriberTakesOverTheQueue) {
  Conn a = Connect();
  Conn b = Connect();
  Conn sender = Connect();
  TestQueue q = CreateQueue(a);
  ASSERT_TRUE(IsOk(Call(a, SubCmd(a, q))));
  ASSERT_TRUE(IsOk(Call(b, SubCmd(b, q))));
  ASSERT_TRUE(IsOk(Call(sender, SendCmd(sender, q, Blob(64)))));
  EXPECT_TRUE(TakePushes(a).empty());
  auto to_b = TakePushes(b);
  ASSERT_EQ(to_b.size(), 1u);
  EXPECT_TRUE(IsOk(Call(b, AckCmd(q, to_b[0].message_id))));
}

TEST_F(RelayQueueTest, DeliveryWindowHoldsBackMessagesUntilAcked) {
  Conn recipient = Connect();
  Conn sender = Connect();
  TestQueue q = CreateQueue(recipient);
  const std::size_t total = kDeliveryWindow + 3;
  for (std::size_t i = 0; i < total; ++i) {
    ASSERT_TRUE(IsOk(Call(sender, SendCmd(sender, q, Blob(10 + i)))));
  }
  ASSERT_TRUE(IsOk(Call(recipient, SubCmd(recipient, q))));
  auto window = TakePushes(recipient);
  ASSERT_EQ(window.size(), kDeliveryWindow);

  // A new message does not jump the line.
  ASSERT_TRUE(IsOk(Call(sender, SendCmd(sender, q, Blob(999)))));
  EXPECT_TRUE(TakePushes(recipient).empty());

  std::vector<protocol::QueueMessage> all = window;
  while (all.size() < total + 1) {
    const Id next_ack = all[all.size() - window.size()].message_id;
    ASSERT_TRUE(IsOk(Call(recipient, AckCmd(q, next_ack))));
    auto more = TakePushes(recipient);
    ASSERT_LE(more.size(), 1u);
    if (more.empty()) break;
    all.push_back(more[0]);
  }
  ASSERT_EQ(all.size(), total + 1);
  EXPECT_EQ(all.back().blob.size(), protocol::RelayBlobSizeFor(999));  // the last one sent came last
  std::set<Id> ids;
  for (const auto& m : all) ids.insert(m.message_id);
  EXPECT_EQ(ids.size(), all.size());
}

TEST_F(RelayQueueTest, ConnectionWideCapSharesSlotsBetweenSubscriptions) {
  Conn recipient = Connect();
  Conn sender = Connect();
  const std::size_t queues = kMaxPushedPerConnection / kDeliveryWindow + 2;
  std::vector<TestQueue> qs;
  for (std::size_t i = 0; i < queues; ++i) {
    qs.push_back(CreateQueue(recipient));
    for (std::size_t j = 0; j < kDeliveryWindow; ++j) {
      engine_->OnCommand(sender.id, SendCmd(sender, qs.back(), Blob(32)), kT0);
    }
    Flush();
  }
  for (auto& q : qs) engine_->OnCommand(recipient.id, SubCmd(recipient, q), kT0);
  CollectPushes(Flush());
  auto first = TakePushes(recipient);
  EXPECT_EQ(first.size(), kMaxPushedPerConnection);

  // Every ACK frees one slot, which a waiting subscription gets.
  std::size_t delivered = first.size();
  std::vector<protocol::QueueMessage> outstanding = first;
  while (!outstanding.empty()) {
    auto m = outstanding.back();
    outstanding.pop_back();
    const auto& q = *std::find_if(
        qs.begin(), qs.end(), [&](const TestQueue& t) { return t.recipient_id == m.recipient_id; });
    ASSERT_TRUE(IsOk(Call(recipient, AckCmd(q, m.message_id))));
    auto more = TakePushes(recipient);
    ASSERT_LE(more.size(), 1u);
    delivered += more.size();
    for (auto& x : more) outstanding.push_back(x);
  }
  EXPECT_EQ(delivered, queues * kDeliveryWindow);
  EXPECT_EQ(CountStoredMessages(data_dir()), 0);
}

TEST_F(RelayQueueTest, DeleteRemovesTheQueueAndItsMessages) {
  Conn c = Connect();
  TestQueue q = CreateQueue(c);
  ASSERT_TRUE(IsOk(Call(c, SendCmd(c, q, Blob(40)))));
  ASSERT_TRUE(IsOk(Call(c, SubCmd(c, q))));
  ASSERT_EQ(TakePushes(c).size(), 1u);
  ASSERT_TRUE(IsOk(Call(c, DelCmd(c, q))));
  EXPECT_EQ(CountRows(data_dir(), "queues"), 0);
  EXPECT_EQ(CountStoredMessages(data_dir()), 0);
  EXPECT_TRUE(IsError(Call(c, SendCmd(c, q, Blob(40))), RelayErrorCode::kAuth));
  EXPECT_TRUE(IsError(Call(c, SubCmd(c, q)), RelayErrorCode::kAuth));
  EXPECT_EQ(engine_->stats().queues, 0u);
  EXPECT_EQ(engine_->stats().bytes_stored, 0u);
}

TEST_F(RelayQueueTest, StatsCountWhatHappened) {
  Conn c = Connect();
  TestQueue q = CreateQueue(c);
  ASSERT_TRUE(IsOk(Call(c, SendCmd(c, q, Blob(100)))));
  ASSERT_TRUE(IsOk(Call(c, SendCmd(c, q, Blob(50)))));
  ASSERT_TRUE(IsOk(Call(c, SubCmd(c, q))));
  EXPECT_TRUE(IsError(Call(c, AckCmd(q, NewId())), RelayErrorCode::kAuth));
  auto s = engine_->stats();
  EXPECT_EQ(s.connections, 1u);
  EXPECT_EQ(s.queues, 1u);
  EXPECT_EQ(s.messages_stored, 2u);
  EXPECT_EQ(s.messages_delivered, 2u);
  EXPECT_EQ(s.bytes_stored, 2 * protocol::kRelayBlobSizes[0]);
  EXPECT_EQ(s.rejections[static_cast<int>(RelayErrorCode::kAuth)], 1u);
  engine_->OnDisconnect(c.id);
  EXPECT_EQ(engine_->stats().connections, 0u);
}

// ---- refusals ----------------------------------------------------------------

TEST_F(RelayQueueTest, SubscribeWithABadSignatureIsRefused) {
  Conn c = Connect();
  TestQueue q = CreateQueue(c);
  auto cmd = SubCmd(c, q);
  std::get<protocol::Subscribe>(cmd.body).signature[5] ^= 1;
  EXPECT_TRUE(IsError(Call(c, std::move(cmd)), RelayErrorCode::kAuth));
  // No access was granted: ACK is still refused, nothing is pushed.
  ASSERT_TRUE(IsOk(Call(c, SendCmd(c, q, Blob(10)))));
  EXPECT_TRUE(TakePushes(c).empty());
}

TEST_F(RelayQueueTest, EveryRecipientCommandRejectsAForeignKeySignature) {
  Conn c = Connect();
  TestQueue q = CreateQueue(c);
  TestQueue impostor = q.Clone();
  impostor.recipient = crypto::Ed25519Generate(rng_);
  EXPECT_TRUE(IsError(Call(c, SubCmd(c, impostor)), RelayErrorCode::kAuth));
  EXPECT_TRUE(IsError(Call(c, GetCmd(c, impostor)), RelayErrorCode::kAuth));
  EXPECT_TRUE(IsError(Call(c, DelCmd(c, impostor)), RelayErrorCode::kAuth));
  EXPECT_TRUE(IsError(Call(c, KeyCmd(c, impostor)), RelayErrorCode::kAuth));
  EXPECT_EQ(CountRows(data_dir(), "queues"), 1);
}

TEST_F(RelayQueueTest, AuthorizerCapturedOnAnotherConnectionIsRejected) {
  Conn victim = Connect();
  Conn attacker = Connect();
  TestQueue q = CreateQueue(victim);
  // Signed and MACed for the victim's handshake hash, replayed elsewhere.
  EXPECT_TRUE(IsError(Call(attacker, SubCmd(victim, q)), RelayErrorCode::kAuth));
  EXPECT_TRUE(IsError(Call(attacker, DelCmd(victim, q)), RelayErrorCode::kAuth));
  EXPECT_TRUE(IsError(Call(attacker, SendCmd(victim, q, Blob(10))), RelayErrorCode::kAuth));
  EXPECT_EQ(CountRows(data_dir(), "queues"), 1);
  EXPECT_EQ(CountStoredMessages(data_dir()), 0);
}

TEST_F(RelayQueueTest, SignatureForAnotherCommandIsRejected) {
  Conn c = Connect();
  TestQueue q = CreateQueue(c);
  // A SUB signature presented as a DEL (same corr id, same queue).
  auto sub = SubCmd(c, q);
  RelayCommand del{
      sub.corr_id,
      protocol::DeleteQueue{q.recipient_id, std::get<protocol::Subscribe>(sub.body).signature}};
  EXPECT_TRUE(IsError(Call(c, std::move(del)), RelayErrorCode::kAuth));
  EXPECT_EQ(CountRows(data_dir(), "queues"), 1);
}

TEST_F(RelayQueueTest, SendWithABadMacIsRefusedAndStoresNothing) {
  Conn c = Connect();
  TestQueue q = CreateQueue(c);
  auto cmd = SendCmd(c, q, Blob(64));
  std::get<protocol::SendMessage>(cmd.body).mac[31] ^= 0x80;
  EXPECT_TRUE(IsError(Call(c, std::move(cmd)), RelayErrorCode::kAuth));
  TestQueue wrong_key = q.Clone();
  rng_.Fill(wrong_key.send_key);
  EXPECT_TRUE(IsError(Call(c, SendCmd(c, wrong_key, Blob(64))), RelayErrorCode::kAuth));
  EXPECT_EQ(CountStoredMessages(data_dir()), 0);
  EXPECT_EQ(engine_->stats().messages_stored, 0u);
}

TEST_F(RelayQueueTest, SendBeforeTheKeyIsSetIsRefused) {
  Conn c = Connect();
  TestQueue q;
  q.recipient = crypto::Ed25519Generate(rng_);
  rng_.Fill(q.send_key);
  auto created = Call(c, NewCmd(q));
  auto* ids = std::get_if<protocol::QueueCreated>(&created.body);
  ASSERT_NE(ids, nullptr);
  q.recipient_id = ids->recipient_id;
  q.sender_id = ids->sender_id;
  EXPECT_TRUE(IsError(Call(c, SendCmd(c, q, Blob(64))), RelayErrorCode::kAuth));
}

TEST_F(RelayQueueTest, UnknownIdsGetTheSameAnswerAsFailedAuthorization) {
  Conn c = Connect();
  TestQueue q = CreateQueue(c);
  TestQueue ghost = q.Clone();
  ghost.recipient_id = NewId();
  ghost.sender_id = NewId();
  TestQueue bad_auth = q.Clone();
  bad_auth.recipient = crypto::Ed25519Generate(rng_);
  rng_.Fill(bad_auth.send_key);

  auto unknown_send = Call(c, SendCmd(c, ghost, Blob(10)));
  auto badmac_send = Call(c, SendCmd(c, bad_auth, Blob(10)));
  auto unknown_sub = Call(c, SubCmd(c, ghost));
  auto badsig_sub = Call(c, SubCmd(c, bad_auth));
  auto unknown_key = Call(c, KeyCmd(c, ghost));
  auto unknown_del = Call(c, DelCmd(c, ghost));
  auto unknown_get = Call(c, GetCmd(c, ghost));
  for (const auto* r : {&unknown_send, &badmac_send, &unknown_sub, &badsig_sub, &unknown_key,
                        &unknown_del, &unknown_get}) {
    EXPECT_TRUE(IsError(*r, RelayErrorCode::kAuth));
  }
}

TEST_F(RelayQueueTest, RepeatedCorrIdIsRejectedAndNotExecuted) {
  Conn c = Connect();
  TestQueue q = CreateQueue(c);
  auto first = SendCmd(c, q, Blob(64));
  const Id corr = first.corr_id;
  auto replay = SendCmd(c, q, Blob(65));
  replay.corr_id = corr;
  std::get<protocol::SendMessage>(replay.body).mac =
      Mac(c, corr, q.sender_id, RelayCommandCode::kSend, q.send_key);
  ASSERT_TRUE(IsOk(Call(c, std::move(first))));
  engine_->OnCommand(c.id, std::move(replay), kT0);
  auto out = Flush();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(IsError(out[0].reply, RelayErrorCode::kDuplicateCorrId));
  EXPECT_EQ(CountStoredMessages(data_dir()), 1);
}

TEST_F(RelayQueueTest, CorrIdsAreRememberedPerConnection) {
  Conn a = Connect();
  Conn b = Connect();
  TestQueue q = CreateQueue(a);
  auto on_a = SendCmd(a, q, Blob(8));
  auto on_b = SendCmd(b, q, Blob(8));
  on_b.corr_id = on_a.corr_id;
  std::get<protocol::SendMessage>(on_b.body).mac =
      Mac(b, on_a.corr_id, q.sender_id, RelayCommandCode::kSend, q.send_key);
  EXPECT_TRUE(IsOk(Call(a, std::move(on_a))));
  EXPECT_TRUE(IsOk(Call(b, std::move(on_b))));
}

TEST_F(RelayQueueTest, OldestCorrIdsAreForgottenBeyondTheCap) {
  limits_.max_corr_ids_remembered = 2;
  Open();
  Conn c = Connect();
  TestQueue q = CreateQueue(c);  // NEW and KEY: two corr ids remembered
  auto send = SendCmd(c, q, Blob(8));
  const Id corr = send.corr_id;
  ASSERT_TRUE(IsOk(Call(c, std::move(send))));
  auto dup = GetCmd(c, q);
  dup.corr_id = corr;
  std::get<protocol::GetMessage>(dup.body).signature =
      Sign(c, corr, q.recipient_id, RelayCommandCode::kGet, q.recipient.secret_key);
  EXPECT_TRUE(IsError(Call(c, std::move(dup)), RelayErrorCode::kDuplicateCorrId));
  ASSERT_FALSE(IsError(Call(c, GetCmd(c, q)), RelayErrorCode::kDuplicateCorrId));
  ASSERT_FALSE(IsError(Call(c, GetCmd(c, q)), RelayErrorCode::kDuplicateCorrId));
  // Two newer ones pushed `corr` out.
  auto old = GetCmd(c, q);
  old.corr_id = corr;
  std::get<protocol::GetMessage>(old.body).signature =
      Sign(c, corr, q.recipient_id, RelayCommandCode::kGet, q.recipient.secret_key);
  EXPECT_TRUE(std::holds_alternative<protocol::QueueMessage>(Call(c, std::move(old)).body));
}

TEST_F(RelayQueueTest, CorrIdMemoryForgetsExactlyTheOldestBeyondTheCap) {
  limits_.max_corr_ids_remembered = 100;
  Open();
  Conn c = Connect();
  TestQueue q;  // ACKs are refused (kAuth) but their corr ids are remembered
  q.recipient_id = NewId();
  std::vector<Id> corrs;
  for (int i = 0; i < 1000; ++i) {
    auto ack = AckCmd(q, NewId());
    corrs.push_back(ack.corr_id);
    engine_->OnCommand(c.id, std::move(ack), kT0);
  }
  for (const auto& o : Flush()) ASSERT_TRUE(IsError(o.reply, RelayErrorCode::kAuth));
  auto replay = [&](std::size_t from, std::size_t to) {
    for (std::size_t i = from; i < to; ++i) {
      engine_->OnCommand(
          c.id, RelayCommand{corrs[i], protocol::AckMessage{q.recipient_id, NewId()}}, kT0 + 10);
    }
    return Flush(kT0 + 10);
  };
  for (const auto& o : replay(900, 1000)) {
    EXPECT_TRUE(IsError(o.reply, RelayErrorCode::kDuplicateCorrId));
  }
  for (const auto& o : replay(0, 100)) EXPECT_TRUE(IsError(o.reply, RelayErrorCode::kAuth));
  // Those hundred are now the remembered ones.
  for (const auto& o : replay(0, 100)) {
    EXPECT_TRUE(IsError(o.reply, RelayErrorCode::kDuplicateCorrId));
  }
  for (const auto& o : replay(900, 1000)) EXPECT_TRUE(IsError(o.reply, RelayErrorCode::kAuth));
}

TEST_F(RelayQueueTest, KeyCanBeSetOnlyOnce) {
  Conn c = Connect();
  TestQueue q = CreateQueue(c);
  TestQueue rekey = q.Clone();
  rng_.Fill(rekey.send_key);
  EXPECT_TRUE(IsError(Call(c, KeyCmd(c, rekey)), RelayErrorCode::kAlreadySet));
  // The first key still works, the second does not.
  EXPECT_TRUE(IsOk(Call(c, SendCmd(c, q, Blob(8)))));
  EXPECT_TRUE(IsError(Call(c, SendCmd(c, rekey, Blob(8))), RelayErrorCode::kAuth));
  // Without the recipient key the answer is kAuth, not kAlreadySet.
  TestQueue stranger = rekey.Clone();
  stranger.recipient = crypto::Ed25519Generate(rng_);
  EXPECT_TRUE(IsError(Call(c, KeyCmd(c, stranger)), RelayErrorCode::kAuth));
}

TEST_F(RelayQueueTest, AckWithoutSubscribeOrGetIsRefused) {
  Conn recipient = Connect();
  Conn other = Connect();
  TestQueue q = CreateQueue(recipient);
  ASSERT_TRUE(IsOk(Call(other, SendCmd(other, q, Blob(8)))));
  ASSERT_TRUE(IsOk(Call(recipient, SubCmd(recipient, q))));
  auto pushed = TakePushes(recipient);
  ASSERT_EQ(pushed.size(), 1u);
  // The message id alone does not let another connection delete it.
  EXPECT_TRUE(IsError(Call(other, AckCmd(q, pushed[0].message_id)), RelayErrorCode::kAuth));
  EXPECT_EQ(CountStoredMessages(data_dir()), 1);
  // Nor can the subscriber ACK a message it was never given.
  EXPECT_TRUE(IsError(Call(recipient, AckCmd(q, NewId())), RelayErrorCode::kAuth));
  EXPECT_TRUE(IsOk(Call(recipient, AckCmd(q, pushed[0].message_id))));
  EXPECT_EQ(CountStoredMessages(data_dir()), 0);
}

// A quiet ACK deletes like any ACK but is answered only when refused; the
// deletion is committed by the same Flush as a normal ACK's.
TEST_F(RelayQueueTest, QuietAckIsAnsweredOnlyWhenRefused) {
  Conn recipient = Connect();
  Conn other = Connect();
  TestQueue q = CreateQueue(recipient);
  ASSERT_TRUE(IsOk(Call(other, SendCmd(other, q, Blob(8)))));
  ASSERT_TRUE(IsOk(Call(other, SendCmd(other, q, Blob(9)))));
  ASSERT_TRUE(IsOk(Call(recipient, SubCmd(recipient, q))));
  auto pushed = TakePushes(recipient);
  ASSERT_EQ(pushed.size(), 2u);
  auto quiet = [&](const Id& message_id) {
    return RelayCommand{NewId(), protocol::AckMessage{q.recipient_id, message_id, /*quiet=*/true}};
  };
  // Refused (not this connection's message, an unknown id): answered AUTH,
  // and nothing is deleted.
  EXPECT_TRUE(IsError(Call(other, quiet(pushed[0].message_id)), RelayErrorCode::kAuth));
  EXPECT_TRUE(IsError(Call(recipient, quiet(NewId())), RelayErrorCode::kAuth));
  EXPECT_EQ(CountStoredMessages(data_dir()), 2);
  // Accepted: no reply at all from the Flush that commits the deletion.
  const std::uint64_t commits = engine_->stats().commits;
  engine_->OnCommand(recipient.id, quiet(pushed[0].message_id), kT0);
  EXPECT_TRUE(engine_->has_staged_writes());
  auto out = Flush();
  for (const auto& o : out) {
    EXPECT_FALSE(o.reply.corr_id.has_value()) << "a quiet ACK was answered";
  }
  EXPECT_EQ(engine_->stats().commits, commits + 1);
  EXPECT_EQ(CountStoredMessages(data_dir()), 1);
  // Its slot in the delivery window is free again and a normal ACK still
  // gets its Ok.
  EXPECT_TRUE(IsOk(Call(recipient, AckCmd(q, pushed[1].message_id))));
  EXPECT_EQ(CountStoredMessages(data_dir()), 0);
  EXPECT_EQ(engine_->stats().bytes_stored, 0u);
}

TEST_F(RelayQueueTest, AckOfAMessageAlreadyAcknowledgedElsewhereSucceeds) {
  Conn a = Connect();
  Conn b = Connect();
  TestQueue q = CreateQueue(a);
  ASSERT_TRUE(IsOk(Call(a, SendCmd(a, q, Blob(8)))));
  auto got_a = Call(a, GetCmd(a, q));
  auto got_b = Call(b, GetCmd(b, q));
  auto* ma = std::get_if<protocol::QueueMessage>(&got_a.body);
  ASSERT_NE(ma, nullptr);
  EXPECT_TRUE(IsOk(Call(b, AckCmd(q, ma->message_id))));
  EXPECT_TRUE(IsOk(Call(a, AckCmd(q, ma->message_id))));
  EXPECT_EQ(engine_->stats().bytes_stored, 0u);
}

TEST_F(RelayQueueTest, BlobAboveTheLimitIsTooLarge) {
  Conn c = Connect();
  TestQueue q = CreateQueue(c);
  EXPECT_TRUE(IsError(Call(c, SendCmd(c, q, Blob(protocol::kMaxBlobBytes + 1))),
                      RelayErrorCode::kTooLarge));
  EXPECT_TRUE(IsOk(Call(c, SendCmd(c, q, Blob(protocol::kMaxBlobBytes)))));
  EXPECT_EQ(CountStoredMessages(data_dir()), 1);
}

TEST_F(RelayQueueTest, MalformedCommandIsRefused) {
  Conn c = Connect();
  TestQueue q = CreateQueue(c);
  auto cmd = SendCmd(c, q, Blob(8));
  std::get<protocol::SendMessage>(cmd.body).sender_id = Id{};
  EXPECT_TRUE(IsError(Call(c, std::move(cmd)), RelayErrorCode::kMalformed));
  auto empty = SendCmd(c, q, Bytes());
  EXPECT_TRUE(IsError(Call(c, std::move(empty)), RelayErrorCode::kMalformed));
  // A zero corr id cannot be echoed: the refusal carries none.
  auto zero = SendCmd(c, q, Blob(8));
  zero.corr_id = Id{};
  engine_->OnCommand(c.id, std::move(zero), kT0);
  auto out = Flush();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_FALSE(out[0].reply.corr_id.has_value());
  EXPECT_TRUE(IsError(out[0].reply, RelayErrorCode::kMalformed));
  EXPECT_TRUE(protocol::ValidateRelayReply(out[0].reply).ok());
}

TEST_F(RelayQueueTest, NewQueueWithAWeakRecipientKeyIsMalformed) {
  Conn c = Connect();
  protocol::PublicKey small_order{};
  small_order[0] = 1;  // the identity point: small order
  auto reply = Call(c, RelayCommand{NewId(), protocol::NewQueue{small_order}});
  EXPECT_TRUE(IsError(reply, RelayErrorCode::kMalformed));
  EXPECT_EQ(CountRows(data_dir(), "queues"), 0);
}

TEST_F(RelayQueueTest, QueuesCreatedPerConnectionAreCapped) {
  limits_.max_queues_created_per_connection = 2;
  Open();
  Conn c = Connect();
  CreateQueue(c);
  CreateQueue(c);
  TestQueue third;
  third.recipient = crypto::Ed25519Generate(rng_);
  EXPECT_TRUE(IsError(Call(c, NewCmd(third)), RelayErrorCode::kQuota));
  Conn fresh = Connect();
  EXPECT_TRUE(std::holds_alternative<protocol::QueueCreated>(Call(fresh, NewCmd(third)).body));
}

TEST_F(RelayQueueTest, TotalQueuesAreCapped) {
  limits_.max_queues = 1;
  Open();
  Conn c = Connect();
  CreateQueue(c);
  TestQueue second;
  second.recipient = crypto::Ed25519Generate(rng_);
  EXPECT_TRUE(IsError(Call(Connect(), NewCmd(second)), RelayErrorCode::kQuota));
}

TEST_F(RelayQueueTest, MessagesPerQueueAreCapped) {
  limits_.max_messages_per_queue = 2;
  Open();
  Conn c = Connect();
  TestQueue q = CreateQueue(c);
  EXPECT_TRUE(IsOk(Call(c, SendCmd(c, q, Blob(8)))));
  EXPECT_TRUE(IsOk(Call(c, SendCmd(c, q, Blob(8)))));
  EXPECT_TRUE(IsError(Call(c, SendCmd(c, q, Blob(8))), RelayErrorCode::kQuota));
  EXPECT_EQ(CountStoredMessages(data_dir()), 2);
  // An ACK makes room again.
  auto got = Call(c, GetCmd(c, q));
  auto* m = std::get_if<protocol::QueueMessage>(&got.body);
  ASSERT_NE(m, nullptr);
  ASSERT_TRUE(IsOk(Call(c, AckCmd(q, m->message_id))));
  EXPECT_TRUE(IsOk(Call(c, SendCmd(c, q, Blob(8)))));
}

TEST_F(RelayQueueTest, BlobsOfAnyOtherThanTheFixedSizesAreRefusedWithoutEffect) {
  Conn c = Connect();
  TestQueue q = CreateQueue(c);
  for (std::size_t n : {std::size_t{1}, std::size_t{100}, std::size_t{511}, std::size_t{513},
                        std::size_t{1024}, std::size_t{1281}, std::size_t{4096},
                        protocol::kMaxBlobBytes - 1}) {
    EXPECT_TRUE(IsError(Call(c, SendCmd(c, q, RawBlob(n))), RelayErrorCode::kMalformed)) << n;
  }
  EXPECT_EQ(engine_->stats().messages_stored, 0u);
  EXPECT_EQ(engine_->stats().bytes_stored, 0u);
  for (std::size_t n : protocol::kRelayBlobSizes) {
    EXPECT_TRUE(IsOk(Call(c, SendCmd(c, q, RawBlob(n))))) << n;
  }
}

TEST_F(RelayQueueTest, WrongSizedBlobGetsTheSameAnswerForUnknownAndKnownQueues) {
  // The size is judged before the id: the answer reveals nothing about it.
  Conn c = Connect();
  TestQueue q = CreateQueue(c);
  TestQueue ghost = q.Clone();
  ghost.sender_id = NewId();
  auto known = Call(c, SendCmd(c, q, RawBlob(100)));
  auto unknown = Call(c, SendCmd(c, ghost, RawBlob(100)));
  EXPECT_TRUE(IsError(known, RelayErrorCode::kMalformed));
  EXPECT_TRUE(IsError(unknown, RelayErrorCode::kMalformed));
}

TEST_F(RelayQueueTest, BytesPerQueueAreCapped) {
  limits_.max_bytes_per_queue = 1280 + 512;
  Open();
  Conn c = Connect();
  TestQueue q = CreateQueue(c);
  EXPECT_TRUE(IsOk(Call(c, SendCmd(c, q, RawBlob(1280)))));
  EXPECT_TRUE(IsError(Call(c, SendCmd(c, q, RawBlob(1280))), RelayErrorCode::kQuota));
  EXPECT_TRUE(IsOk(Call(c, SendCmd(c, q, RawBlob(512)))));
}

TEST_F(RelayQueueTest, TotalStoredBytesAreCapped) {
  limits_.max_total_bytes = 1280 + 512;
  Open();
  Conn c = Connect();
  TestQueue q1 = CreateQueue(c);
  TestQueue q2 = CreateQueue(c);
  EXPECT_TRUE(IsOk(Call(c, SendCmd(c, q1, RawBlob(1280)))));
  EXPECT_TRUE(IsError(Call(c, SendCmd(c, q2, RawBlob(1280))), RelayErrorCode::kQuota));
  // The total survives a restart (it is recomputed from the store).
  Reopen();
  Conn again = Connect();
  EXPECT_TRUE(IsError(Call(again, SendCmd(again, q2, RawBlob(1280))), RelayErrorCode::kQuota));
  EXPECT_TRUE(IsOk(Call(again, SendCmd(again, q2, RawBlob(512)))));
}

TEST_F(RelayQueueTest, SubscriptionsPerConnectionAreCapped) {
  limits_.max_subscriptions_per_connection = 1;
  Open();
  Conn c = Connect();
  TestQueue q1 = CreateQueue(c);
  TestQueue q2 = CreateQueue(c);
  EXPECT_TRUE(IsOk(Call(c, SubCmd(c, q1))));
  EXPECT_TRUE(IsError(Call(c, SubCmd(c, q2)), RelayErrorCode::kQuota));
  EXPECT_TRUE(IsError(Call(c, GetCmd(c, q2)), RelayErrorCode::kQuota));
  EXPECT_TRUE(IsOk(Call(c, SubCmd(c, q1))));  // the same queue again is fine
}

TEST_F(RelayQueueTest, CommandFloodIsRateLimited) {
  limits_.commands_per_second = 2;
  limits_.command_burst = 3;
  Open();
  Conn c = Connect();
  TestQueue q;
  q.recipient = crypto::Ed25519Generate(rng_);
  for (int i = 0; i < 4; ++i) engine_->OnCommand(c.id, NewCmd(q), kT0);
  auto out = Flush();
  ASSERT_EQ(out.size(), 4u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(std::holds_alternative<protocol::QueueCreated>(
        out[static_cast<std::size_t>(i)].reply.body));
  }
  EXPECT_TRUE(IsError(out[3].reply, RelayErrorCode::kRateLimited));
  EXPECT_EQ(CountRows(data_dir(), "queues"), 3);
  // One second later two more tokens; other connections were never limited.
  EXPECT_TRUE(std::holds_alternative<protocol::QueueCreated>(Call(c, NewCmd(q), kT0 + 1).body));
  EXPECT_TRUE(std::holds_alternative<protocol::QueueCreated>(Call(c, NewCmd(q), kT0 + 1).body));
  EXPECT_TRUE(IsError(Call(c, NewCmd(q), kT0 + 1), RelayErrorCode::kRateLimited));
  Conn other = Connect();
  EXPECT_TRUE(std::holds_alternative<protocol::QueueCreated>(Call(other, NewCmd(q), kT0 + 1).body));
  EXPECT_EQ(engine_->stats().rejections[static_cast<int>(RelayErrorCode::kRateLimited)], 2u);
}

TEST_F(RelayQueueTest, CommandsFromUnknownConnectionsAreIgnored) {
  TestQueue q;
  q.recipient = crypto::Ed25519Generate(rng_);
  engine_->OnCommand(12345, NewCmd(q), kT0);
  EXPECT_TRUE(Flush().empty());
  EXPECT_EQ(CountRows(data_dir(), "queues"), 0);
}

TEST_F(RelayQueueTest, NothingIsReleasedToAConnectionThatLeftBeforeFlush) {
  Conn recipient = Connect();
  Conn sender = Connect();
  TestQueue q = CreateQueue(recipient);
  ASSERT_TRUE(IsOk(Call(recipient, SubCmd(recipient, q))));
  engine_->OnCommand(sender.id, SendCmd(sender, q, Blob(8)), kT0);
  engine_->OnDisconnect(recipient.id);
  auto out = Flush();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].connection, sender.id);
  // The message waits for the next subscriber.
  Conn back = Connect();
  ASSERT_TRUE(IsOk(Call(back, SubCmd(back, q))));
  EXPECT_EQ(TakePushes(back).size(), 1u);
}

TEST_F(RelayQueueTest, ConnectionWithoutAUsableHandshakeHashFailsEveryAuthorizer) {
  Conn good = Connect();
  TestQueue q = CreateQueue(good);
  Conn broken;
  broken.id = engine_->OnConnect(ByteSpan());
  broken.h = Bytes(64, 0);  // whatever the client thinks, the relay has no hash
  EXPECT_TRUE(IsError(Call(broken, SubCmd(broken, q)), RelayErrorCode::kAuth));
  EXPECT_TRUE(IsError(Call(broken, SendCmd(broken, q, Blob(8))), RelayErrorCode::kAuth));
}

}  // namespace
}  // namespace rhizome::relay::testing
