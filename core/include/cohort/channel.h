// How a server (the coordinator) talks to its peers: one message at a time,
// each addressed by the peer's name, whatever carries it. Two
// implementations: RouterChannel (router_channel.h), a ZeroMQ ROUTER socket
// with optional CurveZMQ, for real jobs; InProcessChannel (below), queues
// in memory, for tests and tools that run peers as threads of one process.
//
// A channel delivers what the wire would: envelopes are encoded and decoded
// (so a message that fails to decode reaches the server as an error in
// Incoming::message, with its sender), payload frames pass without copies.
// A Channel is used by one thread (the server's); InProcessChannel's peer
// ends may be used by other threads.
//
// The other side is a ClientChannel: one client's connection to its server
// (a worker's to its coordinator). Its implementations are the worker's
// ZeroMQ DEALER (cohort/worker_connection.h) and InProcessChannel::Peer.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include "cohort/protocol.h"
#include "cohort/status.h"
#include "cohort/wire.h"

namespace cohort {

// What a server accepts from one message: the envelope's decoding limits
// and how many payload frames it keeps (more are dropped and the message
// is reported as ResourceExhausted).
struct ReceiveLimits {
  DecodeLimits decode;
  size_t max_payload_frames = 65536;
};

class Channel {
 public:
  virtual ~Channel() = default;

  // Sends one message to `peer` (an Incoming::peer this channel delivered)
  // without waiting for it to arrive. Returns the bytes sent. Errors:
  // Unavailable or IoError when the peer is gone or cannot take it.
  virtual Result<size_t> send(const std::string& peer, Outgoing outgoing) = 0;

  // Waits up to `timeout` for the next message from any peer; nullopt when
  // none came. Decoding errors and limits are reported in Incoming::message.
  virtual std::optional<Incoming> receive(std::chrono::milliseconds timeout, const ReceiveLimits& limits) = 0;

  // Where peers reach it (a resolved ZeroMQ endpoint; a name in process).
  virtual std::string endpoint() const = 0;
};

// One client's end of a connection to a server: what it sends reaches the
// server as one Incoming with this client's name; what it receives the
// server sent to it. Used by one thread.
class ClientChannel {
 public:
  virtual ~ClientChannel() = default;

  // Sends one message to the server without waiting for it to arrive.
  // Returns the bytes sent. Errors: Unavailable or IoError when it cannot
  // be sent.
  virtual Result<size_t> send(Outgoing outgoing) = 0;

  // Waits up to `timeout` for the next message from the server; nullopt
  // when none came (also when there is no connection: it waits as long).
  virtual std::optional<Incoming> receive(std::chrono::milliseconds timeout, const ReceiveLimits& limits) = 0;

  // Whether the connection was made anew since the last call (not counting
  // the first one): the server at the other end may have restarted and
  // not know this client, which then registers again.
  virtual bool reconnected() = 0;
};

// A Channel whose peers live in this process: no sockets, no threads of its
// own. Each peer gets a Peer end from connect(); the server's sends to a
// peer that disconnected (or never connected) fail with Unavailable.
class InProcessChannel final : public Channel {
 public:
  // One peer's end: sends to the server, receives what the server sent it.
  // Thread-safe; it may outlive the channel (its sends then fail).
  class Peer final : public ClientChannel {
   public:
    // Errors: Unavailable once the channel is gone.
    Result<size_t> send(Outgoing outgoing) override;
    // The next message from the server within `timeout`; nullopt when none
    // came (a peer that disconnected, or outlived the channel, waits it out).
    std::optional<Incoming> receive(std::chrono::milliseconds timeout, const ReceiveLimits& limits) override;
    std::optional<Incoming> receive(std::chrono::milliseconds timeout) { return receive(timeout, ReceiveLimits{}); }
    // Never: a peer connects once; connect() again makes a new Peer.
    bool reconnected() override { return false; }
    // Leaves: the server's later sends to this peer fail.
    void disconnect();
    const std::string& name() const { return name_; }

   private:
    friend class InProcessChannel;
    struct Shared;
    Peer(std::string name, std::string user_id, std::shared_ptr<Shared> shared);

    std::string name_;
    std::string user_id_;  // what the server sees as Incoming::user_id
    std::shared_ptr<Shared> shared_;
  };

  InProcessChannel();
  ~InProcessChannel() override;

  // A new peer named `name` (its messages arrive with Incoming::peer =
  // name); `user_id` plays the CURVE key its connection authenticated with
  // (transport.h), "" for none. A name already connected is replaced.
  // Unlike the rest of the channel, it may be called from any thread.
  std::unique_ptr<Peer> connect(const std::string& name, const std::string& user_id = "");

  Result<size_t> send(const std::string& peer, Outgoing outgoing) override;
  std::optional<Incoming> receive(std::chrono::milliseconds timeout, const ReceiveLimits& limits) override;
  std::string endpoint() const override { return "in-process"; }

 private:
  std::shared_ptr<Peer::Shared> shared_;
};

}  // namespace cohort
