#include "worker_registry.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace cohort {
namespace {

Hello hello_with_key(uint8_t key_byte, std::string software = "cohort 0.1.0") {
  Hello h;
  h.worker_key.fill(key_byte);
  h.software = std::move(software);
  return h;
}

std::vector<std::string> alive_routing_ids(const WorkerRegistry& registry) {
  std::vector<std::string> out;
  for (const WorkerEntry* e : registry.alive()) out.push_back(e->routing_id);
  return out;
}

std::vector<uint32_t> alive_indices(const WorkerRegistry& registry) {
  std::vector<uint32_t> out;
  for (const WorkerEntry* e : registry.alive()) out.push_back(e->index);
  return out;
}

TEST(WorkerRegistryTest, AddAssignsIndicesInArrivalOrder) {
  WorkerRegistry registry;
  EXPECT_EQ(registry.add("r-a", hello_with_key(1)).index, 0u);
  EXPECT_EQ(registry.add("r-b", hello_with_key(2)).index, 1u);
  EXPECT_EQ(registry.add("r-c", hello_with_key(3)).index, 2u);
  EXPECT_EQ(registry.alive_count(), 3u);
  EXPECT_EQ(registry.size_for_partitioning(), 3u);
}

TEST(WorkerRegistryTest, AddStoresTheHelloAndRoutingId) {
  WorkerRegistry registry;
  const WorkerEntry& e = registry.add("r-a", hello_with_key(9, "cohort 9"));
  EXPECT_EQ(e.routing_id, "r-a");
  EXPECT_TRUE(e.alive);
  EXPECT_EQ(e.hello, hello_with_key(9, "cohort 9"));
  const WorkerEntry* found = registry.find("r-a");
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(found->index, 0u);
  EXPECT_EQ(found->hello.software, "cohort 9");
  EXPECT_EQ(registry.find("r-unknown"), nullptr);
}

TEST(WorkerRegistryTest, ReturningKeyKeepsIndexAndRetiresOldConnection) {
  WorkerRegistry registry;
  registry.add("r-a", hello_with_key(1));
  registry.add("r-b", hello_with_key(2));
  registry.add("r-c", hello_with_key(3));
  const WorkerEntry& back = registry.add("r-b2", hello_with_key(2));  // worker b reconnects
  EXPECT_EQ(back.index, 1u);
  EXPECT_EQ(registry.find("r-b"), nullptr);
  ASSERT_NE(registry.find("r-b2"), nullptr);
  EXPECT_EQ(registry.find("r-b2")->index, 1u);
  EXPECT_EQ(alive_routing_ids(registry), (std::vector<std::string>{"r-a", "r-b2", "r-c"}));
  EXPECT_EQ(registry.size_for_partitioning(), 3u);  // no new shard for a returning key
  // The next new key still gets the next index.
  EXPECT_EQ(registry.add("r-d", hello_with_key(4)).index, 3u);
}

TEST(WorkerRegistryTest, SameKeyOnSameConnectionStaysOneWorker) {
  WorkerRegistry registry;
  registry.add("r-a", hello_with_key(1, "v1"));
  const WorkerEntry& again = registry.add("r-a", hello_with_key(1, "v2"));
  EXPECT_EQ(again.index, 0u);
  EXPECT_TRUE(again.alive);
  EXPECT_EQ(again.hello.software, "v2");
  EXPECT_EQ(registry.alive_count(), 1u);
  EXPECT_EQ(registry.size_for_partitioning(), 1u);
}

TEST(WorkerRegistryTest, MarkGoneRemovesFromAliveButKeepsTheShard) {
  WorkerRegistry registry;
  registry.add("r-a", hello_with_key(1));
  registry.add("r-b", hello_with_key(2));
  registry.mark_gone("r-a");
  EXPECT_EQ(registry.find("r-a"), nullptr);
  EXPECT_EQ(alive_routing_ids(registry), (std::vector<std::string>{"r-b"}));
  EXPECT_EQ(registry.alive_count(), 1u);
  EXPECT_EQ(registry.size_for_partitioning(), 2u);
  registry.mark_gone("r-unknown");  // no effect
  EXPECT_EQ(registry.alive_count(), 1u);
}

TEST(WorkerRegistryTest, GoneWorkerReturnsWithItsIndex) {
  WorkerRegistry registry;
  registry.add("r-a", hello_with_key(1));
  registry.add("r-b", hello_with_key(2));
  registry.mark_gone("r-a");
  EXPECT_EQ(registry.add("r-a2", hello_with_key(1)).index, 0u);
  EXPECT_EQ(alive_indices(registry), (std::vector<uint32_t>{0, 1}));
}

TEST(WorkerRegistryTest, AliveIsSortedByIndexNotRoutingId) {
  WorkerRegistry registry;
  registry.add("zulu", hello_with_key(1));   // index 0
  registry.add("alpha", hello_with_key(2));  // index 1
  registry.add("mike", hello_with_key(3));   // index 2
  EXPECT_EQ(alive_routing_ids(registry), (std::vector<std::string>{"zulu", "alpha", "mike"}));
  EXPECT_EQ(alive_indices(registry), (std::vector<uint32_t>{0, 1, 2}));
}

TEST(WorkerRegistryTest, SizeForPartitioningCountsDistinctKeys) {
  WorkerRegistry registry;
  EXPECT_EQ(registry.size_for_partitioning(), 0u);
  registry.add("r1", hello_with_key(1));
  registry.add("r2", hello_with_key(1));  // same key again
  registry.add("r3", hello_with_key(2));
  registry.mark_gone("r3");
  EXPECT_EQ(registry.size_for_partitioning(), 2u);
  EXPECT_EQ(registry.alive_count(), 1u);
}

// A restarted coordinator reserves the checkpoint's indices: workers get
// their old index (shard, task ids) in whatever order they come back.
TEST(WorkerRegistryTest, ReservedIndicesAreKeptWhateverTheOrderOfRegistration) {
  WorkerRegistry registry;
  PublicKey first{};
  first.fill(7);
  PublicKey second{};
  second.fill(9);
  const std::vector<PublicKey> recorded = {first, second};
  registry.reserve_indices(recorded);
  EXPECT_EQ(registry.alive_count(), 0u);
  EXPECT_EQ(registry.size_for_partitioning(), 2u);
  EXPECT_EQ(registry.add("r-late", hello_with_key(9)).index, 1u);
  EXPECT_EQ(registry.add("r-new", hello_with_key(4)).index, 2u);
  EXPECT_EQ(registry.add("r-early", hello_with_key(7)).index, 0u);
  std::vector<PublicKey> keys = registry.keys_by_index();
  ASSERT_EQ(keys.size(), 3u);
  EXPECT_EQ(keys[0], first);
  EXPECT_EQ(keys[1], second);
  EXPECT_EQ(keys[2], hello_with_key(4).worker_key);
  ASSERT_NE(registry.find_key(second), nullptr);
  EXPECT_EQ(registry.find_key(second)->routing_id, "r-late");
  registry.mark_gone("r-late");
  EXPECT_EQ(registry.find_key(second), nullptr);
}

}  // namespace
}  // namespace cohort
