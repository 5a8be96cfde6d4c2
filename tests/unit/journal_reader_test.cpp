// The journal reader on what journals meet: whole files, torn slots, torn log
// records, truncation at every byte, corrupt headers. It must never crash, never
// invent a connection, and say in one line what it skipped.
#include "collector/journal/journal_reader.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "collector/journal/journal_format.h"

using namespace connleak::journal;

namespace {

// A journal laid out like the shim's, with a small slot table.
class Builder {
 public:
  static constexpr std::uint32_t kSlots = 8;
  static constexpr std::size_t kLog = 4096;
  Builder() : bytes_(kHeaderSize + kSlots * sizeof(Slot) + kLog, 0) {
    Header& h = header();
    std::memcpy(h.magic, kMagic, sizeof h.magic);
    h.version = kVersion;
    h.header_size = kHeaderSize;
    h.slot_count = kSlots;
    h.slot_size = sizeof(Slot);
    h.slots_offset = kHeaderSize;
    h.log_offset = kHeaderSize + kSlots * sizeof(Slot);
    h.log_capacity = kLog;
    h.pid = 4242;
    h.start_ticks = 77;
    const char argv[] = "./svc\0--port\0";
    std::memcpy(h.argv, argv, sizeof argv - 1);
    h.argv_bytes = sizeof argv - 1;
    h.header_check = header_check(h);
    h.opened.store(3);
    h.closed.store(1);
  }
  Header& header() { return *reinterpret_cast<Header*>(bytes_.data()); }
  Slot& slot(std::size_t i) {
    return *reinterpret_cast<Slot*>(bytes_.data() + kHeaderSize + i * sizeof(Slot));
  }
  void connection(std::size_t i, std::uint64_t id, std::uint32_t stack, std::uint32_t target) {
    Slot& s = slot(i);
    s.kind = static_cast<std::uint8_t>(SlotKind::kConnection);
    s.record_id = id;
    s.handle = 0x1000 + id;
    s.stack = stack;
    s.target = target;
    s.fd = -1;
    s.check = slot_check(s);
    s.seq.store(2);
  }
  void record(RecordType type, std::uint32_t id, const void* payload, std::size_t size) {
    auto* rec = reinterpret_cast<RecordHeader*>(bytes_.data() + header().log_offset + used_);
    rec->size = static_cast<std::uint32_t>(size);
    rec->id = id;
    char* body = reinterpret_cast<char*>(rec) + sizeof *rec;
    std::memcpy(body, payload, size);
    rec->check = record_check(body, rec->size, id);
    rec->type.store(static_cast<std::uint32_t>(type));
    used_ += sizeof(RecordHeader) + padded(size);
    header().log_used.store(used_);
  }
  std::size_t log_end() const { return kHeaderSize + kSlots * sizeof(Slot) + used_; }
  std::vector<unsigned char>& bytes() { return bytes_; }

 private:
  std::vector<unsigned char> bytes_;
  std::size_t used_ = 0;
};

Builder sample() {
  Builder b;
  const std::uint64_t frames[] = {0x401000, 0x401100};
  b.record(RecordType::kNativeStack, 5, frames, sizeof frames);
  b.record(RecordType::kString, 1, "host=db user=app", 16);
  b.connection(0, 1, 5, 1);
  b.connection(3, 3, 5, 1);
  return b;
}

std::optional<JournalContents> parse(const std::vector<unsigned char>& bytes, std::string* error) {
  return parse_journal(bytes.data(), bytes.size(), error);
}

}  // namespace

TEST(JournalReader, ReadsAWholeJournal) {
  Builder b = sample();
  std::string error;
  auto j = parse(b.bytes(), &error);
  ASSERT_TRUE(j) << error;
  EXPECT_EQ(j->pid, 4242);
  EXPECT_EQ(j->start_ticks, 77u);
  EXPECT_EQ(j->argv, (std::vector<std::string>{"./svc", "--port"}));
  ASSERT_EQ(j->open.size(), 2u);
  EXPECT_EQ(j->open[0].record_id, 1u);
  EXPECT_EQ(j->open[1].record_id, 3u);
  EXPECT_EQ(j->open[0].target, "host=db user=app");
  EXPECT_EQ(j->native_stacks.at(5), (std::vector<std::uint64_t>{0x401000, 0x401100}));
  EXPECT_EQ(j->opened, 3u);
  EXPECT_EQ(j->closed, 1u);
  EXPECT_TRUE(j->notes.empty());
}

TEST(JournalReader, ATornSlotIsSkippedWithANote) {
  Builder b = sample();
  b.slot(3).seq.store(3);  // the writer died between its two stores
  std::string error;
  auto j = parse(b.bytes(), &error);
  ASSERT_TRUE(j) << error;
  ASSERT_EQ(j->open.size(), 1u);
  ASSERT_EQ(j->notes.size(), 1u);
  EXPECT_NE(j->notes[0].find("1 slot(s) were being written"), std::string::npos) << j->notes[0];

  Builder c = sample();
  c.slot(0).record_id = 999;  // a half-copied payload: the checksum no longer matches
  j = parse(c.bytes(), &error);
  ASSERT_TRUE(j) << error;
  ASSERT_EQ(j->open.size(), 1u);
  EXPECT_EQ(j->open[0].record_id, 3u);
}

TEST(JournalReader, ATornLogRecordEndsTheLogWithANote) {
  Builder b = sample();
  b.bytes()[b.log_end() - 3] ^= 0x5a;  // inside the last record's payload
  std::string error;
  auto j = parse(b.bytes(), &error);
  ASSERT_TRUE(j) << error;
  EXPECT_EQ(j->open.size(), 2u);
  EXPECT_EQ(j->open[0].target, "");  // its target was in the torn record
  ASSERT_FALSE(j->notes.empty());
  EXPECT_NE(j->notes[0].find("torn record"), std::string::npos) << j->notes[0];
}

TEST(JournalReader, TruncationAtEveryByteNeverCrashesNorInvents) {
  Builder b = sample();
  const std::vector<unsigned char>& whole = b.bytes();
  for (std::size_t cut = 0; cut <= b.log_end() + 8; ++cut) {
    std::vector<unsigned char> part(whole.begin(), whole.begin() + static_cast<long>(cut));
    std::string error;
    auto j = parse(part, &error);
    if (cut < sizeof(Header)) {
      EXPECT_FALSE(j) << cut;
      EXPECT_NE(error.find("truncated"), std::string::npos) << error;
      continue;
    }
    ASSERT_TRUE(j) << cut << ": " << error;
    EXPECT_LE(j->open.size(), 2u) << cut;
    for (const JournalEntry& e : j->open) EXPECT_TRUE(e.record_id == 1 || e.record_id == 3);
    if (cut < b.log_end()) {
      EXPECT_FALSE(j->notes.empty()) << cut;
    }
  }
}

TEST(JournalReader, CorruptHeadersAreOneLine) {
  std::string error;
  Builder b = sample();
  b.bytes()[0] = 'X';
  EXPECT_FALSE(parse(b.bytes(), &error));
  EXPECT_EQ(error, "not a connleak journal (bad magic)");

  Builder v = sample();
  v.header().version = 99;
  EXPECT_FALSE(parse(v.bytes(), &error));
  EXPECT_NE(error.find("version 99"), std::string::npos) << error;

  Builder c = sample();
  c.header().pid = 1;  // changed after the checksum was taken
  EXPECT_FALSE(parse(c.bytes(), &error));
  EXPECT_NE(error.find("checksum"), std::string::npos) << error;

  Builder l = sample();
  l.header().slot_count = 1u << 30;
  l.header().header_check = header_check(l.header());
  EXPECT_FALSE(parse(l.bytes(), &error));
  EXPECT_NE(error.find("impossible layout"), std::string::npos) << error;
}

TEST(JournalReader, ALogLongerThanTheFileIsCutToTheFile) {
  Builder b = sample();
  b.header().log_used.store(Builder::kLog * 100);
  std::string error;
  auto j = parse(b.bytes(), &error);
  ASSERT_TRUE(j) << error;
  EXPECT_EQ(j->open.size(), 2u);
  EXPECT_EQ(j->native_stacks.size(), 1u);
}
