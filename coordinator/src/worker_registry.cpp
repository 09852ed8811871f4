#include "worker_registry.h"

#include <algorithm>

namespace cohort {

const WorkerEntry& WorkerRegistry::add(const std::string& routing_id, const Hello& hello) {
  auto [key_it, is_new_key] =
      index_by_key_.emplace(hello.worker_key, static_cast<uint32_t>(index_by_key_.size()));
  if (!is_new_key) retire(hello.worker_key);  // the same worker on a new connection
  WorkerEntry& entry = by_routing_id_[routing_id];
  entry = WorkerEntry{key_it->second, routing_id, hello, true};
  return entry;
}

const WorkerEntry* WorkerRegistry::find(const std::string& routing_id) const {
  auto it = by_routing_id_.find(routing_id);
  return it == by_routing_id_.end() || !it->second.alive ? nullptr : &it->second;
}

void WorkerRegistry::mark_gone(const std::string& routing_id) {
  auto it = by_routing_id_.find(routing_id);
  if (it != by_routing_id_.end()) it->second.alive = false;
}

void WorkerRegistry::retire(const PublicKey& key) {
  for (auto& [id, entry] : by_routing_id_) {
    if (entry.hello.worker_key == key) entry.alive = false;
  }
}

const WorkerEntry* WorkerRegistry::find_key(const PublicKey& key) const {
  for (const auto& [id, entry] : by_routing_id_) {
    if (entry.alive && entry.hello.worker_key == key) return &entry;
  }
  return nullptr;
}

void WorkerRegistry::reserve_indices(std::span<const PublicKey> keys) {
  for (const PublicKey& key : keys) index_by_key_.emplace(key, static_cast<uint32_t>(index_by_key_.size()));
}

std::vector<PublicKey> WorkerRegistry::keys_by_index() const {
  std::vector<PublicKey> keys(index_by_key_.size());
  for (const auto& [key, index] : index_by_key_) keys[index] = key;
  return keys;
}

std::vector<const WorkerEntry*> WorkerRegistry::alive() const {
  std::vector<const WorkerEntry*> out;
  for (const auto& [_, entry] : by_routing_id_) {
    if (entry.alive) out.push_back(&entry);
  }
  std::sort(out.begin(), out.end(),
            [](const WorkerEntry* a, const WorkerEntry* b) { return a->index < b->index; });
  return out;
}

}  // namespace cohort
