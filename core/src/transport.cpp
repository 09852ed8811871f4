#include "cohort/transport.h"

#include <sodium.h>

#include <cassert>
#include <cstring>
#include <sstream>
#include <vector>

#include <zmq_addon.hpp>

#include "cohort/durable_file.h"

namespace cohort {

Result<CurveKey> curve_public_key(const PublicKey& ed25519) {
  CurveKey curve{};
  if (crypto_sign_ed25519_pk_to_curve25519(curve.data(), ed25519.data()) != 0) {
    return Status::invalid_argument("the key " + to_hex(ed25519) + " is not a valid Ed25519 public key");
  }
  return curve;
}

CurveKeyPair::CurveKeyPair(const Identity& identity) {
  // An Identity's public key is a valid point by construction, so the
  // conversion cannot fail.
  [[maybe_unused]] const bool converted =
      crypto_sign_ed25519_pk_to_curve25519(public_key_.data(), identity.public_key().data()) == 0 &&
      crypto_sign_ed25519_sk_to_curve25519(secret_key_.data(), identity.secret_key_.data()) == 0;
  assert(converted);
}

CurveKeyPair::~CurveKeyPair() { sodium_memzero(secret_key_.data(), secret_key_.size()); }

void make_curve_server(zmq::socket_t& socket, const Identity& identity) {
  const CurveKeyPair keys(identity);
  socket.set(zmq::sockopt::curve_server, 1);
  socket.set(zmq::sockopt::curve_secretkey, zmq::const_buffer(keys.secret_key().data(), keys.secret_key().size()));
  socket.set(zmq::sockopt::zap_domain, std::string(kZapDomain));
}

Status make_curve_client(zmq::socket_t& socket, const Identity& identity, const PublicKey& server) {
  COHORT_ASSIGN_OR_RETURN(CurveKey server_curve, curve_public_key(server));
  const CurveKeyPair keys(identity);
  socket.set(zmq::sockopt::curve_serverkey, zmq::const_buffer(server_curve.data(), server_curve.size()));
  socket.set(zmq::sockopt::curve_publickey, zmq::const_buffer(keys.public_key().data(), keys.public_key().size()));
  socket.set(zmq::sockopt::curve_secretkey, zmq::const_buffer(keys.secret_key().data(), keys.secret_key().size()));
  return Status();
}

std::string authenticated_user(const zmq::message_t& frame) {
  const char* user = zmq_msg_gets(frame.handle(), "User-Id");
  return user == nullptr ? std::string() : std::string(user);
}

bool authenticated_as(std::string_view user_id, const PublicKey& ed25519) {
  Result<CurveKey> curve = curve_public_key(ed25519);
  return curve.ok() && !user_id.empty() && user_id == to_hex(*curve);
}

namespace {

std::string_view without_comment_and_space(std::string_view line) {
  line = line.substr(0, line.find('#'));
  const auto first = line.find_first_not_of(" \t\r");
  if (first == std::string_view::npos) return {};
  const auto last = line.find_last_not_of(" \t\r");
  return line.substr(first, last - first + 1);
}

}  // namespace

Result<std::set<PublicKey>> read_allow_list(const std::filesystem::path& path) {
  // A million keys, one 65-byte line each.
  constexpr uint64_t kMaxAllowListBytes = uint64_t{64} << 20;
  Result<std::string> text = read_regular_file(path, kMaxAllowListBytes, "an allow-list");
  if (text.status().code() == Status::Code::kNotFound) {
    return Status::not_found("cannot open the allow-list " + path.string() + ": no such file");
  }
  COHORT_RETURN_IF_ERROR(text.status());
  std::istringstream in(*text);
  std::set<PublicKey> keys;
  int number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    const std::string_view entry = without_comment_and_space(line);
    if (entry.empty()) continue;
    Result<PublicKey> key = parse_public_key(entry);
    const Status valid = key.ok() ? curve_public_key(*key).status() : key.status();
    if (!valid.ok()) {
      return Status::corruption(path.string() + ": line " + std::to_string(number) + ": " + valid.message());
    }
    keys.insert(*key);
  }
  return keys;
}

// ------------------------------------------------------------------ ZAP

Result<std::unique_ptr<ZapHandler>> ZapHandler::start(zmq::context_t& context, const Admission& admission,
                                                      Logger& log) {
  std::optional<std::set<CurveKey>> allowed;
  if (admission.allow_list) {
    allowed.emplace();
    for (const PublicKey& key : *admission.allow_list) {
      COHORT_ASSIGN_OR_RETURN(CurveKey curve, curve_public_key(key));
      allowed->insert(curve);
    }
  }
  zmq::socket_t socket(context, zmq::socket_type::rep);
  socket.set(zmq::sockopt::linger, 0);
  try {
    socket.bind("inproc://zeromq.zap.01");
  } catch (const zmq::error_t& e) {
    return Status::io_error(std::string("cannot start the ZAP handler (is another one running in this "
                                        "ZeroMQ context?): ") +
                            e.what());
  }
  return std::unique_ptr<ZapHandler>(new ZapHandler(std::move(socket), std::move(allowed), log));
}

ZapHandler::ZapHandler(zmq::socket_t socket, std::optional<std::set<CurveKey>> allowed, Logger& log)
    : socket_(std::move(socket)), allowed_(std::move(allowed)), log_(log), thread_([this] { serve(); }) {}

ZapHandler::~ZapHandler() {
  stop_ = true;
  thread_.join();
}

void ZapHandler::serve() {
  zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
  while (!stop_) {
    if (zmq::poll(&item, 1, kPollInterval) > 0) answer_one();
  }
}

// A request (RFC 27): version, request id, domain, address, routing id,
// mechanism, credentials (for CURVE: the client's 32-byte public key).
// Every request gets a reply, or the REP socket would stall.
void ZapHandler::answer_one() {
  std::vector<zmq::message_t> request;
  if (!zmq::recv_multipart(socket_, std::back_inserter(request))) return;
  auto text = [&](size_t i) { return i < request.size() ? request[i].to_string() : std::string(); };
  std::string refusal;
  CurveKey client{};
  if (request.size() < 7 || text(0) != "1.0") {
    refusal = "a malformed ZAP request";
  } else if (text(2) != kZapDomain || text(5) != "CURVE" || request[6].size() != client.size()) {
    refusal = "a " + text(5) + " connection in ZAP domain '" + text(2) + "'";
  } else {
    std::memcpy(client.data(), request[6].data(), client.size());
    if (allowed_ && !allowed_->contains(client)) {
      refusal = "CURVE key " + to_hex(client) + " from " + text(3) + ": not on the allow-list";
    }
  }
  const bool admit = refusal.empty();
  ++(admit ? admitted_ : refused_);
  if (!admit) refusals_log_.warn(log_, "refused a connection: " + refusal);
  std::vector<zmq::message_t> reply;
  reply.emplace_back(std::string("1.0"));
  reply.emplace_back(text(1));
  reply.emplace_back(std::string(admit ? "200" : "400"));
  reply.emplace_back(std::string(admit ? "OK" : "not admitted"));
  reply.emplace_back(admit ? to_hex(client) : std::string());
  reply.emplace_back();  // no metadata
  (void)zmq::send_multipart(socket_, reply);
}

// ------------------------------------------------------------ monitor

SocketMonitor::SocketMonitor(zmq::context_t& context, zmq::socket_t& watched, int events)
    : watched_(watched), events_(context, zmq::socket_type::pair) {
  // Unique per monitor, so that one never meets an endpoint another has
  // not yet released.
  static std::atomic<uint64_t> serial{0};
  const std::string endpoint = "inproc://cohort-monitor-" + std::to_string(serial++);
  if (zmq_socket_monitor(watched.handle(), endpoint.c_str(), events) != 0) throw zmq::error_t();
  events_.set(zmq::sockopt::linger, 0);
  events_.connect(endpoint);
}

SocketMonitor::~SocketMonitor() { zmq_socket_monitor(watched_.handle(), nullptr, 0); }

std::optional<SocketMonitor::Event> SocketMonitor::next(std::chrono::milliseconds timeout) {
  zmq::pollitem_t item{events_.handle(), 0, ZMQ_POLLIN, 0};
  if (zmq::poll(&item, 1, timeout) == 0) return std::nullopt;
  std::vector<zmq::message_t> frames;  // [event id (2) + value (4)], [endpoint]
  if (!zmq::recv_multipart(events_, std::back_inserter(frames)) || frames.empty() || frames[0].size() < 6) {
    return std::nullopt;
  }
  Event event;
  std::memcpy(&event.id, frames[0].data(), sizeof(event.id));
  std::memcpy(&event.value, static_cast<const uint8_t*>(frames[0].data()) + 2, sizeof(event.value));
  return event;
}

// ------------------------------------------------------------ handshake

Status connect_authenticated(zmq::context_t& context, zmq::socket_t& socket, const std::string& endpoint,
                             std::chrono::milliseconds timeout, Logger* log, int max_failures) {
  SocketMonitor monitor(context, socket,
                        ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                            ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
  try {
    socket.connect(endpoint);
  } catch (const zmq::error_t& e) {
    return Status::invalid_argument("cannot connect to '" + endpoint + "': " + e.what());
  }
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + timeout;
  bool warned = false;
  int failures = 0;
  while (true) {
    const auto now = std::chrono::steady_clock::now();
    if (log != nullptr && !warned && now - start >= kHandshakePatience) {
      warned = true;
      log->warn("nothing answers at " + endpoint + " yet (no CURVE handshake after " +
                std::to_string(kHandshakePatience.count()) + " s): is the coordinator running at this address? "
                "Waiting up to " + std::to_string(timeout.count() / 1000) + " s.");
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    if (left.count() <= 0) {
      return Status::deadline_exceeded("no CURVE handshake with " + endpoint + " completed within " +
                                       std::to_string(timeout.count() / 1000) + " s (is the coordinator running?)");
    }
    if (log != nullptr && !warned) left = std::min(left, std::chrono::duration_cast<std::chrono::milliseconds>(kHandshakePatience));
    std::optional<SocketMonitor::Event> event = monitor.next(left);
    if (!event) continue;
    const auto [id, value] = *event;
    if (id == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) return Status();
    if (id == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
      return Status::failed_precondition("the coordinator at " + endpoint + " refused this worker's key (ZAP status " +
                                         std::to_string(value) +
                                         "): it admits only the keys on its allow-list; give the operator "
                                         "your .pub file");
    }
    if (++failures >= max_failures) {
      return Status::failed_precondition(
          "the CURVE handshake with " + endpoint + " failed " + std::to_string(failures) +
          " times: the coordinator's public key is not the one given (compare --coordinator-key with the "
          "coordinator.pub in its output directory), or it does not use CURVE ([network] curve = false; "
          "then connect with --no-curve)");
    }
  }
}

}  // namespace cohort
