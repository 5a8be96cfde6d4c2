#include "collector/core/stack_depot.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>
#include <vector>

namespace connleak {
namespace {

TEST(StackDepot, SameStackSameId) {
  StackDepot depot;
  std::uintptr_t a[] = {0x1000, 0x2000, 0x3000};
  std::uintptr_t b[] = {0x1000, 0x2000, 0x3001};
  StackId ia = depot.intern(a, 3);
  StackId ib = depot.intern(b, 3);
  EXPECT_NE(ia, 0u);
  EXPECT_NE(ia, ib);
  EXPECT_EQ(depot.intern(a, 3), ia);
  EXPECT_EQ(depot.intern(a, 2), depot.intern(b, 2));  // a prefix is its own stack
  auto frames = depot.get(ia);
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(frames[2], 0x3000u);
  EXPECT_EQ(depot.size(), 3u);
}

TEST(StackDepot, EmptyAndUnknown) {
  StackDepot depot;
  EXPECT_EQ(depot.intern(nullptr, 0), 0u);
  EXPECT_TRUE(depot.get(0).empty());
  EXPECT_TRUE(depot.get(12345).empty());
}

TEST(StackDepot, DepthIsCappedAtMaxFrames) {
  StackDepot depot;
  std::vector<std::uintptr_t> deep(kMaxFrames + 50, 0x42);
  StackId id = depot.intern(deep.data(), deep.size());
  EXPECT_EQ(depot.get(id).size(), kMaxFrames);
}

// Many threads interning overlapping stacks agree on one id per stack.
TEST(StackDepot, ConcurrentInternIsConsistent) {
  StackDepot depot;
  constexpr int kThreads = 8, kStacks = 500;
  std::vector<std::vector<StackId>> ids(kThreads, std::vector<StackId>(kStacks));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 3; ++round) {
        for (int i = 0; i < kStacks; ++i) {
          int s = (i * 7 + t * 13) % kStacks;
          std::uintptr_t frames[] = {0x400000u + static_cast<std::uintptr_t>(s), 0x500000,
                                     0x600000};
          ids[t][s] = depot.intern(frames, 3);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int s = 0; s < kStacks; ++s)
    for (int t = 1; t < kThreads; ++t) EXPECT_EQ(ids[t][s], ids[0][s]);
  EXPECT_EQ(depot.size(), static_cast<std::size_t>(kStacks));
  std::set<StackId> unique(ids[0].begin(), ids[0].end());
  EXPECT_EQ(unique.size(), static_cast<std::size_t>(kStacks));
}

}  // namespace
}  // namespace connleak
