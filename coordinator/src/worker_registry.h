// The workers a coordinator knows, keyed by their ZeroMQ routing id.
// Private to the coordinator library.
#pragma once

#include <map>
#include <span>
#include <string>
#include <vector>

#include "cohort/protocol.h"

namespace cohort {

struct WorkerEntry {
  uint32_t index = 0;      // stable slot: the same key keeps its index
  std::string routing_id;  // current connection
  Hello hello;
  bool alive = true;
};

class WorkerRegistry {
 public:
  // Registers (or re-registers, on a new connection) the worker whose key is
  // hello.worker_key. A returning key keeps its index.
  const WorkerEntry& add(const std::string& routing_id, const Hello& hello);
  const WorkerEntry* find(const std::string& routing_id) const;
  void mark_gone(const std::string& routing_id);
  // Every connection of `key` is gone (e.g. a banned key); it keeps its index.
  void retire(const PublicKey& key);

  // The alive connection of `key`, if any.
  const WorkerEntry* find_key(const PublicKey& key) const;

  // Hands out indices 0, 1, ... to `keys` (keys by index, as a checkpoint
  // recorded them) before anyone registers, so that each keeps its index.
  // Only on an empty registry.
  void reserve_indices(std::span<const PublicKey> keys);
  // Every key that was given an index, by index.
  std::vector<PublicKey> keys_by_index() const;

  // Alive workers in index order.
  std::vector<const WorkerEntry*> alive() const;
  size_t alive_count() const { return alive().size(); }
  // Number of data shards: one per index ever handed out.
  size_t size_for_partitioning() const { return index_by_key_.size(); }

 private:
  std::map<std::string, WorkerEntry> by_routing_id_;
  std::map<PublicKey, uint32_t> index_by_key_;
};

}  // namespace cohort
