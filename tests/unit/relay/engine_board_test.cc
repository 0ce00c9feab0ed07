// RelayEngine: group boards (create, append, read from a cursor), their
// authorization, quotas and TTL.
#include "engine_internal.h"
#include "relay_test_util.h"
#include "rhizome/protocol/transport.h"

namespace rhizome::relay::testing {
namespace {

using RelayBoardTest = RelayTest;

const protocol::BoardItems* ItemsOf(const RelayReply& r) {
  return std::get_if<protocol::BoardItems>(&r.body);
}

TEST_F(RelayBoardTest, AppendThenReadFromACursor) {
  Conn writer = Connect();
  Conn reader = Connect();
  TestBoard b = NewBoard();
  ASSERT_TRUE(IsOk(Call(writer, CreateBoardCmd(b, 86400))));
  std::vector<Bytes> blobs;
  for (int i = 0; i < 5; ++i) {
    blobs.push_back(Blob(256));
    ASSERT_TRUE(IsOk(Call(writer, AppendCmd(writer, b, blobs.back()), kT0 + 61)));
  }
  auto first = Call(reader, ReadCmd(reader, b, 0, 2));
  auto* items = ItemsOf(first);
  ASSERT_NE(items, nullptr);
  ASSERT_EQ(items->items.size(), 2u);
  EXPECT_EQ(items->items[0].seq, 1u);
  EXPECT_EQ(items->items[1].seq, 2u);
  EXPECT_EQ(items->items[0].blob, blobs[0]);
  EXPECT_EQ(items->items[0].received_at, kT0 + 60);  // rounded
  EXPECT_EQ(items->next_cursor, 2u);

  auto rest = Call(reader, ReadCmd(reader, b, items->next_cursor));
  auto* more = ItemsOf(rest);
  ASSERT_NE(more, nullptr);
  ASSERT_EQ(more->items.size(), 3u);
  EXPECT_EQ(more->items[2].blob, blobs[4]);
  EXPECT_EQ(more->next_cursor, 5u);

  auto none = Call(reader, ReadCmd(reader, b, 5));
  ASSERT_NE(ItemsOf(none), nullptr);
  EXPECT_TRUE(ItemsOf(none)->items.empty());
  EXPECT_EQ(ItemsOf(none)->next_cursor, 5u);
  // Reading changes nothing: the items stay for every other reader.
  EXPECT_EQ(CountRows(data_dir(), "board_items"), 5);
}

TEST_F(RelayBoardTest, ReadReplyFitsOneTransportMessage) {
  Conn c = Connect();
  TestBoard b = NewBoard();
  ASSERT_TRUE(IsOk(Call(c, CreateBoardCmd(b, 86400))));
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(IsOk(Call(c, AppendCmd(c, b, Blob(protocol::kMaxBlobBytes)))));
  }
  auto reply = Call(c, ReadCmd(c, b, 0));
  auto* items = ItemsOf(reply);
  ASSERT_NE(items, nullptr);
  EXPECT_EQ(items->items.size(), 3u);
  EXPECT_EQ(items->next_cursor, 3u);
  auto bytes = protocol::SerializeTransportMessage(protocol::TransportMessage{std::move(reply)});
  ASSERT_TRUE(bytes.ok()) << bytes.error().message;
  EXPECT_LE(bytes->size(), protocol::kMaxTransportMessageBytes);
}

TEST_F(RelayBoardTest, ManySmallItemsAreCappedByMaxItems) {
  Conn c = Connect();
  TestBoard b = NewBoard();
  ASSERT_TRUE(IsOk(Call(c, CreateBoardCmd(b, 86400))));
  for (std::size_t i = 0; i < protocol::kMaxBoardItemsPerRead + 3; ++i) {
    engine_->OnCommand(c.id, AppendCmd(c, b, Blob(16)), kT0);
  }
  Flush();
  auto items_reply = Call(c, ReadCmd(c, b, 0));
  auto* items = ItemsOf(items_reply);
  ASSERT_NE(items, nullptr);
  EXPECT_EQ(items->items.size(), protocol::kMaxBoardItemsPerRead);
}

TEST_F(RelayBoardTest, WrongKeysAreRefused) {
  Conn c = Connect();
  TestBoard b = NewBoard();
  ASSERT_TRUE(IsOk(Call(c, CreateBoardCmd(b, 86400))));
  // The read capability does not let anyone write, nor the reverse.
  TestBoard reader_only = b;
  reader_only.write_key = b.read_key;
  EXPECT_TRUE(IsError(Call(c, AppendCmd(c, reader_only, Blob(8))), RelayErrorCode::kAuth));
  TestBoard writer_only = b;
  writer_only.read_key = b.write_key;
  EXPECT_TRUE(IsError(Call(c, ReadCmd(c, writer_only, 0)), RelayErrorCode::kAuth));
  // A MAC made for another connection.
  Conn other = Connect();
  EXPECT_TRUE(IsError(Call(other, AppendCmd(c, b, Blob(8))), RelayErrorCode::kAuth));
  EXPECT_EQ(CountRows(data_dir(), "board_items"), 0);
}

TEST_F(RelayBoardTest, UnknownBoardGetsTheSameAnswerAsAWrongKey) {
  Conn c = Connect();
  TestBoard ghost = NewBoard();
  EXPECT_TRUE(IsError(Call(c, AppendCmd(c, ghost, Blob(8))), RelayErrorCode::kAuth));
  EXPECT_TRUE(IsError(Call(c, ReadCmd(c, ghost, 0)), RelayErrorCode::kAuth));
}

TEST_F(RelayBoardTest, CreateIsIdempotentForTheCreatorOnly) {
  Conn c = Connect();
  TestBoard b = NewBoard();
  ASSERT_TRUE(IsOk(Call(c, CreateBoardCmd(b, 86400))));
  ASSERT_TRUE(IsOk(Call(c, AppendCmd(c, b, Blob(8)))));
  // A retry with the same keys (the first reply was lost) succeeds...
  EXPECT_TRUE(IsOk(Call(c, CreateBoardCmd(b, 86400))));
  // ...a takeover attempt with other keys does not, and changes nothing.
  TestBoard hijack = b;
  rng_.Fill(hijack.write_key);
  EXPECT_TRUE(IsError(Call(c, CreateBoardCmd(hijack, 86400)), RelayErrorCode::kAuth));
  EXPECT_TRUE(IsError(Call(c, AppendCmd(c, hijack, Blob(8))), RelayErrorCode::kAuth));
  auto items_reply = Call(c, ReadCmd(c, b, 0));
  auto* items = ItemsOf(items_reply);
  ASSERT_NE(items, nullptr);
  EXPECT_EQ(items->items.size(), 1u);
  EXPECT_EQ(engine_->stats().boards, 1u);
}

TEST_F(RelayBoardTest, BoardTtlIsCappedByTheRelay) {
  limits_.max_board_ttl_seconds = 3600;
  Open();
  Conn c = Connect();
  TestBoard b = NewBoard();
  ASSERT_TRUE(IsOk(Call(c, CreateBoardCmd(b, protocol::kMaxBoardTtlSeconds))));
  ASSERT_TRUE(IsOk(Call(c, AppendCmd(c, b, Blob(8)))));
  // Within the capped TTL the item is there; after it, it is not.
  auto before_reply = Call(c, ReadCmd(c, b, 0), kT0 + 3599);
  auto* before = ItemsOf(before_reply);
  ASSERT_NE(before, nullptr);
  EXPECT_EQ(before->items.size(), 1u);
  auto after_reply = Call(c, ReadCmd(c, b, 0), kT0 + 3600);
  auto* after = ItemsOf(after_reply);
  ASSERT_NE(after, nullptr);
  EXPECT_TRUE(after->items.empty());
  auto removed = engine_->Expire(kT0 + 3600);
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, 1u);
  EXPECT_EQ(CountRows(data_dir(), "board_items"), 0);
  // The board itself, idle and empty past its TTL, is gone too.
  EXPECT_EQ(CountRows(data_dir(), "boards"), 0);
  EXPECT_EQ(engine_->stats().boards, 0u);
}

TEST_F(RelayBoardTest, AppendsKeepTheBoardAlive) {
  Conn c = Connect();
  TestBoard b = NewBoard();
  ASSERT_TRUE(IsOk(Call(c, CreateBoardCmd(b, 1000))));
  ASSERT_TRUE(IsOk(Call(c, AppendCmd(c, b, Blob(8)), kT0 + 900)));
  ASSERT_TRUE(engine_->Expire(kT0 + 1000).ok());
  EXPECT_EQ(CountRows(data_dir(), "boards"), 1);
  EXPECT_TRUE(IsOk(Call(c, AppendCmd(c, b, Blob(8)), kT0 + 1000)));
}

TEST_F(RelayBoardTest, ItemsPerBoardAreCapped) {
  limits_.max_items_per_board = 2;
  Open();
  Conn c = Connect();
  TestBoard b = NewBoard();
  ASSERT_TRUE(IsOk(Call(c, CreateBoardCmd(b, 86400))));
  EXPECT_TRUE(IsOk(Call(c, AppendCmd(c, b, Blob(8)))));
  EXPECT_TRUE(IsOk(Call(c, AppendCmd(c, b, Blob(8)))));
  EXPECT_TRUE(IsError(Call(c, AppendCmd(c, b, Blob(8))), RelayErrorCode::kQuota));
}

TEST_F(RelayBoardTest, ItemsOfAnyOtherThanTheFixedBlobSizesAreRefused) {
  Conn c = Connect();
  TestBoard b = NewBoard();
  ASSERT_TRUE(IsOk(Call(c, CreateBoardCmd(b, 86400))));
  for (std::size_t n : {std::size_t{1}, std::size_t{511}, std::size_t{513}, std::size_t{16384}}) {
    EXPECT_TRUE(IsError(Call(c, AppendCmd(c, b, RawBlob(n))), RelayErrorCode::kMalformed)) << n;
  }
  auto items_reply = Call(c, ReadCmd(c, b, 0));
  auto* items = ItemsOf(items_reply);
  ASSERT_NE(items, nullptr);
  EXPECT_TRUE(items->items.empty());
  EXPECT_TRUE(IsOk(Call(c, AppendCmd(c, b, RawBlob(4352)))));
}

TEST_F(RelayBoardTest, BytesPerBoardAreCapped) {
  limits_.max_bytes_per_board = 1280 + 512;  // one blob of each of the two small sizes
  Open();
  Conn c = Connect();
  TestBoard b = NewBoard();
  ASSERT_TRUE(IsOk(Call(c, CreateBoardCmd(b, 86400))));
  EXPECT_TRUE(IsOk(Call(c, AppendCmd(c, b, RawBlob(1280)))));
  EXPECT_TRUE(IsError(Call(c, AppendCmd(c, b, RawBlob(1280))), RelayErrorCode::kQuota));
  EXPECT_TRUE(IsOk(Call(c, AppendCmd(c, b, RawBlob(512)))));
}

TEST_F(RelayBoardTest, BoardsAreCapped) {
  limits_.max_boards = 1;
  Open();
  Conn c = Connect();
  ASSERT_TRUE(IsOk(Call(c, CreateBoardCmd(NewBoard(), 60))));
  EXPECT_TRUE(IsError(Call(Connect(), CreateBoardCmd(NewBoard(), 60)), RelayErrorCode::kQuota));
}

TEST_F(RelayBoardTest, BoardsCreatedPerConnectionAreCapped) {
  limits_.max_queues_created_per_connection = 1;
  Open();
  Conn c = Connect();
  ASSERT_TRUE(IsOk(Call(c, CreateBoardCmd(NewBoard(), 60))));
  EXPECT_TRUE(IsError(Call(c, CreateBoardCmd(NewBoard(), 60)), RelayErrorCode::kQuota));
}

TEST_F(RelayBoardTest, BoardSequenceContinuesAfterRestart) {
  Conn c = Connect();
  TestBoard b = NewBoard();
  ASSERT_TRUE(IsOk(Call(c, CreateBoardCmd(b, 86400))));
  ASSERT_TRUE(IsOk(Call(c, AppendCmd(c, b, Blob(8)))));
  Reopen();
  Conn again = Connect();
  ASSERT_TRUE(IsOk(Call(again, AppendCmd(again, b, Blob(600)))));
  auto items_reply = Call(again, ReadCmd(again, b, 1));
  auto* items = ItemsOf(items_reply);
  ASSERT_NE(items, nullptr);
  ASSERT_EQ(items->items.size(), 1u);
  EXPECT_EQ(items->items[0].seq, 2u);
  EXPECT_EQ(items->items[0].blob.size(), protocol::RelayBlobSizeFor(600));
}

}  // namespace
}  // namespace rhizome::relay::testing
