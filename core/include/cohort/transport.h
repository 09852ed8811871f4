// Transport security: CurveZMQ between workers and the coordinator.
//
// Every party has one Ed25519 identity (crypto.h). Its CURVE (X25519) key
// pair is derived from it with libsodium's Ed25519 -> Curve25519
// conversion, so one key file serves for signing and for the transport, and
// the public key a worker is told to pin (the coordinator's .pub file) is
// the one that authenticates the server.
//
// The coordinator's ROUTER socket is a CURVE server in the ZAP domain
// kZapDomain; a ZapHandler in the same ZeroMQ context decides which client
// keys may connect (any key, or an allow-list of worker keys). A refused or
// non-CURVE client never gets a message through: ZeroMQ drops the
// connection during the handshake, before the coordinator reads anything.
// Each accepted connection carries the client's CURVE public key, in hex,
// as the ZAP user id ("User-Id" property of every message it sends), which
// lets the coordinator check that a Hello's Ed25519 key is the key the
// connection authenticated with (authenticated_as).
//
// Wire format and the deployment story: docs/PROTOCOL.md ("Transport
// security"), docs/DEPLOYMENT.md.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>

#include <zmq.hpp>

#include "cohort/crypto.h"
#include "cohort/log.h"
#include "cohort/log_throttle.h"
#include "cohort/status.h"

namespace cohort {

using CurveKey = std::array<uint8_t, 32>;

// The ZAP domain of the coordinator's server socket.
inline constexpr std::string_view kZapDomain = "cohort";

// The CURVE public key of an Ed25519 public key. Errors: InvalidArgument
// when the bytes are not a valid Ed25519 point (no CURVE key exists).
Result<CurveKey> curve_public_key(const PublicKey& ed25519);

// An identity's CURVE key pair. The secret half is wiped on destruction.
class CurveKeyPair {
 public:
  explicit CurveKeyPair(const Identity& identity);
  CurveKeyPair(const CurveKeyPair&) = delete;
  CurveKeyPair& operator=(const CurveKeyPair&) = delete;
  ~CurveKeyPair();

  const CurveKey& public_key() const { return public_key_; }
  const CurveKey& secret_key() const { return secret_key_; }

 private:
  CurveKey public_key_{};
  CurveKey secret_key_{};
};

// Makes `socket` (before bind) a CURVE server with `identity`'s key in the
// ZAP domain kZapDomain. ZeroMQ keeps its own copy of the secret.
void make_curve_server(zmq::socket_t& socket, const Identity& identity);

// Makes `socket` (before connect) a CURVE client with `identity`'s key that
// accepts only a server holding `server`'s key. Errors: InvalidArgument
// when `server` is not a valid Ed25519 public key.
Status make_curve_client(zmq::socket_t& socket, const Identity& identity, const PublicKey& server);

// The ZAP user id of a received frame: the hex CURVE public key its
// connection authenticated with, or "" when the connection did not
// authenticate through a ZapHandler (no CURVE).
std::string authenticated_user(const zmq::message_t& frame);

// Whether `user_id` (authenticated_user) is the CURVE key of `ed25519`.
bool authenticated_as(std::string_view user_id, const PublicKey& ed25519);

// Reads an allow-list file: one hex Ed25519 public key per line (the
// content of a worker's .pub file); blank lines and text after '#' are
// ignored. Errors: NotFound for a missing file; IoError for one that is not
// a regular file, ResourceExhausted beyond 64 MiB; Corruption naming the
// file and line for anything that is not a valid key.
Result<std::set<PublicKey>> read_allow_list(const std::filesystem::path& path);

// Who may connect: any key (open registration; stake rules still apply at
// registration), or only the keys of an allow-list.
struct Admission {
  std::optional<std::set<PublicKey>> allow_list;  // nullopt = open
};

// Answers ZeroMQ's ZAP requests (RFC 27, inproc://zeromq.zap.01) on its own
// thread: CURVE clients admitted by `admission` get status 200 and their
// CURVE key in hex as user id; every other request gets 400 and is logged
// (at most 10 lines per 10 s: a refused client retries all the time).
// Stopped and joined by the destructor (within kPollInterval). There can be
// one handler per ZeroMQ context, and it should outlive the server sockets
// that use it: without a handler ZeroMQ admits CURVE clients without asking
// (their messages then carry no user id, which authenticated_as refuses).
class ZapHandler {
 public:
  static constexpr std::chrono::milliseconds kPollInterval{50};

  // Binds the ZAP endpoint and starts the thread. Errors: IoError when the
  // endpoint is taken (another handler in this context); InvalidArgument
  // for an allow-listed key that is not a valid Ed25519 point.
  static Result<std::unique_ptr<ZapHandler>> start(zmq::context_t& context, const Admission& admission,
                                                   Logger& log);
  ~ZapHandler();
  ZapHandler(const ZapHandler&) = delete;
  ZapHandler& operator=(const ZapHandler&) = delete;

  // Connections admitted and refused so far. Thread-safe.
  uint64_t admitted() const { return admitted_.load(); }
  uint64_t refused() const { return refused_.load(); }

 private:
  ZapHandler(zmq::socket_t socket, std::optional<std::set<CurveKey>> allowed, Logger& log);
  void serve();
  void answer_one();

  zmq::socket_t socket_;  // used only by thread_
  std::optional<std::set<CurveKey>> allowed_;
  Logger& log_;
  LogThrottle refusals_log_{10, std::chrono::seconds(10)};  // a refused client retries every 100 ms
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> admitted_{0};
  std::atomic<uint64_t> refused_{0};
  std::thread thread_;
};

// Watches a socket's connection events (a ZeroMQ socket monitor,
// zmq_socket_monitor) on an inproc PAIR socket of its own, from
// construction until destruction. A socket has at most one monitor: a new
// one replaces the one before it. Resource type; one thread, the watched
// socket's. Throws zmq::error_t when the monitor cannot be started.
class SocketMonitor {
 public:
  // `events`: the ZMQ_EVENT_* bits to report. `context` must be `watched`'s.
  SocketMonitor(zmq::context_t& context, zmq::socket_t& watched, int events);
  ~SocketMonitor();
  SocketMonitor(const SocketMonitor&) = delete;
  SocketMonitor& operator=(const SocketMonitor&) = delete;

  struct Event {
    uint16_t id = 0;     // one ZMQ_EVENT_* bit
    uint32_t value = 0;  // the event's value (an fd, an errno, a ZAP status)
  };
  // The next event, waiting up to `timeout` (zero: only one already
  // reported), or nullopt when none came.
  std::optional<Event> next(std::chrono::milliseconds timeout);

 private:
  zmq::socket_t& watched_;
  zmq::socket_t events_;
};

// Connects a CURVE client socket (make_curve_client) to `endpoint` and
// waits until a handshake succeeded, so that a wrong server key or a
// refused client key is reported instead of waiting in silence (ZeroMQ
// retries a failed handshake forever). Errors: FailedPrecondition after
// `max_failures` handshakes in a row failed (the message says whether the
// server refused this key or the server key is probably wrong);
// DeadlineExceeded when no handshake completed within `timeout` (no server
// there); with `log`, it also warns once, after kHandshakePatience, that
// nothing answers yet. `context` must be `socket`'s.
inline constexpr std::chrono::seconds kHandshakePatience{5};
Status connect_authenticated(zmq::context_t& context, zmq::socket_t& socket, const std::string& endpoint,
                             std::chrono::milliseconds timeout, Logger* log = nullptr, int max_failures = 5);

}  // namespace cohort
