#include <algorithm>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>

#include "cohort/channel.h"

namespace cohort {
namespace {

// A message as it travels: the encoded envelope, the payload frames.
struct Parcel {
  std::string peer;
  std::string user_id;
  std::vector<uint8_t> envelope;
  Frames payload;
};

Parcel parcel_of(std::string peer, std::string user_id, Outgoing outgoing) {
  return {std::move(peer), std::move(user_id), encode_message(outgoing.message), std::move(outgoing.payload)};
}

size_t bytes_of(const Parcel& parcel) { return parcel.envelope.size() + size_of(parcel.payload); }

// What a receiver gets for `parcel`, as receive_message would deliver it.
Incoming delivered(Parcel parcel, const ReceiveLimits& limits) {
  Incoming in;
  in.peer = std::move(parcel.peer);
  in.user_id = std::move(parcel.user_id);
  in.bytes = bytes_of(parcel);
  const size_t kept = std::min(parcel.payload.size(), limits.max_payload_frames);
  const size_t dropped = parcel.payload.size() - kept;
  parcel.payload.resize(kept);
  in.payload = std::move(parcel.payload);
  decode_incoming(in, parcel.envelope, dropped, limits.max_payload_frames, limits.decode);
  return in;
}

}  // namespace

// Everything both ends share, under one lock.
struct InProcessChannel::Peer::Shared {
  std::mutex mutex;
  std::condition_variable changed;
  bool open = true;                               // the channel exists
  std::deque<Parcel> to_server;
  std::map<std::string, std::deque<Parcel>> to_peer;  // connected peers' inboxes

  // Waits for `queue` to be non-empty (or `timeout`); pops its front. A
  // queue that does not exist (a peer that left) is waited on as an empty
  // one, as a socket without a connection would be, so that its reader
  // does not spin.
  std::optional<Parcel> pop(std::unique_lock<std::mutex>& lock, std::chrono::milliseconds timeout,
                            const std::function<std::deque<Parcel>*()>& queue) {
    const bool ready = changed.wait_for(lock, timeout, [&] {
      std::deque<Parcel>* q = queue();
      return q != nullptr && !q->empty();
    });
    std::deque<Parcel>* q = queue();
    if (!ready || q == nullptr || q->empty()) return std::nullopt;
    Parcel parcel = std::move(q->front());
    q->pop_front();
    return parcel;
  }
};

InProcessChannel::Peer::Peer(std::string name, std::string user_id, std::shared_ptr<Shared> shared)
    : name_(std::move(name)), user_id_(std::move(user_id)), shared_(std::move(shared)) {}

Result<size_t> InProcessChannel::Peer::send(Outgoing outgoing) {
  Parcel parcel = parcel_of(name_, user_id_, std::move(outgoing));
  const size_t bytes = bytes_of(parcel);
  {
    std::lock_guard lock(shared_->mutex);
    if (!shared_->open) return Status::unavailable("the in-process channel is closed");
    shared_->to_server.push_back(std::move(parcel));
  }
  shared_->changed.notify_all();
  return bytes;
}

std::optional<Incoming> InProcessChannel::Peer::receive(std::chrono::milliseconds timeout,
                                                        const ReceiveLimits& limits) {
  std::unique_lock lock(shared_->mutex);
  std::optional<Parcel> parcel = shared_->pop(lock, timeout, [&]() -> std::deque<Parcel>* {
    auto it = shared_->to_peer.find(name_);
    return it == shared_->to_peer.end() ? nullptr : &it->second;
  });
  lock.unlock();
  if (!parcel) return std::nullopt;
  parcel->peer.clear();  // as on a DEALER: the server has no routing id
  return delivered(std::move(*parcel), limits);
}

void InProcessChannel::Peer::disconnect() {
  {
    std::lock_guard lock(shared_->mutex);
    shared_->to_peer.erase(name_);
  }
  shared_->changed.notify_all();
}

InProcessChannel::InProcessChannel() : shared_(std::make_shared<Peer::Shared>()) {}

InProcessChannel::~InProcessChannel() {
  {
    std::lock_guard lock(shared_->mutex);
    shared_->open = false;
    shared_->to_peer.clear();
  }
  shared_->changed.notify_all();
}

std::unique_ptr<InProcessChannel::Peer> InProcessChannel::connect(const std::string& name,
                                                                  const std::string& user_id) {
  {
    std::lock_guard lock(shared_->mutex);
    shared_->to_peer[name].clear();
  }
  return std::unique_ptr<Peer>(new Peer(name, user_id, shared_));
}

Result<size_t> InProcessChannel::send(const std::string& peer, Outgoing outgoing) {
  Parcel parcel = parcel_of(peer, "", std::move(outgoing));
  const size_t bytes = bytes_of(parcel);
  {
    std::lock_guard lock(shared_->mutex);
    auto it = shared_->to_peer.find(peer);
    if (it == shared_->to_peer.end()) return Status::unavailable("no in-process peer '" + peer + "'");
    it->second.push_back(std::move(parcel));
  }
  shared_->changed.notify_all();
  return bytes;
}

std::optional<Incoming> InProcessChannel::receive(std::chrono::milliseconds timeout, const ReceiveLimits& limits) {
  std::unique_lock lock(shared_->mutex);
  std::optional<Parcel> parcel = shared_->pop(lock, timeout, [&] { return &shared_->to_server; });
  lock.unlock();
  if (!parcel) return std::nullopt;
  return delivered(std::move(*parcel), limits);
}

}  // namespace cohort
