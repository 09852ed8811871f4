// Transport security against a real coordinator process: who gets in over
// CurveZMQ, who is refused in the handshake (so that the coordinator never
// parses a byte of theirs), and that a Hello is bound to the key its
// connection authenticated with.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cohort/transport.h"
#include "cohort/wire.h"
#include "harness.h"

namespace cohort::testing {
namespace {

using std::chrono::milliseconds;

std::string endpoint_in(const ScratchDir& dir) { return "ipc://" + (dir.path() / "coordinator.sock").string(); }

// A one-round job with one worker; `network` is added to [network].
std::string job_toml(const ScratchDir& dir, const std::string& network = "",
                     double registration_timeout_seconds = 60) {
  return R"(
[job]
rounds = 1
output_dir = ")" + (dir.path() / "out").string() + R"("
[data]
eval_samples = 500
[training]
local_steps = 5
[round]
min_workers = 1
registration_timeout_seconds = )" + std::to_string(registration_timeout_seconds) + R"(
[network]
listen = ")" + endpoint_in(dir) + "\"\n" + network;
}

CohortProcess start_coordinator(const ScratchDir& dir, const std::string& job) {
  write_file(dir.path() / "job.toml", job);
  return CohortProcess({"coordinator", "--config", (dir.path() / "job.toml").string()},
                       dir.path() / "coordinator.out", dir.path() / "coordinator.err");
}

std::vector<std::string> worker_args(const ScratchDir& dir, const std::string& coordinator_key,
                                     const std::filesystem::path& key_file = {}) {
  std::vector<std::string> args = {"worker",          "--coordinator", endpoint_in(dir), "--coordinator-key",
                                   coordinator_key,   "--threads",     "1",              "--idle-timeout",
                                   "60"};
  if (!key_file.empty()) args.insert(args.end(), {"--key", key_file.string()});
  return args;
}

size_t count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// A client driven by hand; over CURVE when given the coordinator's key.
class Client {
 public:
  Client(const std::string& endpoint, const std::optional<PublicKey>& coordinator,
         Identity identity = Identity::generate())
      : identity_(std::move(identity)) {
    socket_.set(zmq::sockopt::linger, 0);
    // A refused client has no connection to queue on, so a send would block.
    socket_.set(zmq::sockopt::sndtimeo, 2000);
    if (coordinator) {
      EXPECT_TRUE(make_curve_client(socket_, identity_, *coordinator).ok());
    }
    socket_.connect(endpoint);
  }

  Hello hello(const PublicKey& key) const {
    Hello hello;
    hello.worker_key = key;
    hello.device.name = "cpu";
    hello.dataset = DatasetInfo{"fashion-mnist", 60000, 10};
    return hello;
  }
  const PublicKey& key() const { return identity_.public_key(); }

  // Sends whether or not the message can leave (a refused client's cannot).
  void send(Message message) { (void)send_message(socket_, {std::move(message)}); }
  void send_raw(const std::string& bytes) { (void)socket_.send(zmq::buffer(bytes)); }
  std::optional<Incoming> next(milliseconds timeout) { return receive_message(socket_, false, timeout); }

 private:
  Identity identity_;
  zmq::context_t context_;
  zmq::socket_t socket_{context_, zmq::socket_type::dealer};
};

PublicKey parsed(const std::string& hex) {
  Result<PublicKey> key = parse_public_key(hex);
  EXPECT_TRUE(key.ok()) << "coordinator.pub holds '" << hex << "'";
  return key.ok() ? *key : PublicKey{};
}

TEST(Curve, AWorkerPinningAnotherCoordinatorKeyStopsWithAClearError) {
  ASSERT_TRUE(init_crypto().ok());
  ScratchDir dir;
  CohortProcess coordinator = start_coordinator(dir, job_toml(dir));
  ASSERT_FALSE(coordinator_key(dir.path() / "out").empty()) << coordinator.stderr_text();
  CohortProcess worker(worker_args(dir, to_hex(Identity::generate().public_key())), dir.path() / "w.out",
                       dir.path() / "w.err");
  const std::optional<int> code = worker.wait(std::chrono::seconds(60));
  ASSERT_TRUE(code.has_value()) << "the worker kept waiting:\n" << worker.stderr_text();
  EXPECT_NE(*code, 0);
  EXPECT_NE(worker.stderr_text().find("the CURVE handshake with " + endpoint_in(dir) + " failed"), std::string::npos)
      << worker.stderr_text();
  EXPECT_NE(worker.stderr_text().find("--coordinator-key"), std::string::npos) << worker.stderr_text();
  EXPECT_EQ(coordinator.stderr_text().find("registered"), std::string::npos) << coordinator.stderr_text();
}

TEST(Curve, AClientWithoutCurveIsRefusedBeforeAnyMessageIsParsed) {
  ASSERT_TRUE(init_crypto().ok());
  ScratchDir dir;
  CohortProcess coordinator = start_coordinator(dir, job_toml(dir));
  const PublicKey key = parsed(coordinator_key(dir.path() / "out"));

  Client plaintext(endpoint_in(dir), std::nullopt);
  plaintext.send_raw("plaintext garbage");
  plaintext.send(plaintext.hello(plaintext.key()));
  EXPECT_FALSE(plaintext.next(milliseconds(2000)).has_value());

  // The same garbage over CURVE is parsed, and answered: so the silence
  // above is the handshake's doing.
  Client authenticated(endpoint_in(dir), key);
  authenticated.send_raw("authenticated garbage");
  std::optional<Incoming> reply = authenticated.next(milliseconds(30000));
  ASSERT_TRUE(reply.has_value() && reply->message.ok());
  const auto* error = std::get_if<ErrorReply>(&reply->message.value());
  ASSERT_NE(error, nullptr);
  EXPECT_EQ(error->code, ErrorCode::kMalformedMessage);
  EXPECT_EQ(count(coordinator.stderr_text(), "rejected a message"), 1u) << coordinator.stderr_text();
  EXPECT_EQ(coordinator.stderr_text().find("registered"), std::string::npos) << coordinator.stderr_text();
}

TEST(Curve, AHelloWhoseKeyIsNotTheConnectionsKeyIsRefused) {
  ASSERT_TRUE(init_crypto().ok());
  ScratchDir dir;
  CohortProcess coordinator = start_coordinator(dir, job_toml(dir));
  Client client(endpoint_in(dir), parsed(coordinator_key(dir.path() / "out")));
  const PublicKey someone_else = Identity::generate().public_key();
  client.send(client.hello(someone_else));
  std::optional<Incoming> reply = client.next(milliseconds(30000));
  ASSERT_TRUE(reply.has_value() && reply->message.ok());
  const auto* error = std::get_if<ErrorReply>(&reply->message.value());
  ASSERT_NE(error, nullptr) << message_kind(reply->message.value());
  EXPECT_EQ(error->code, ErrorCode::kForbidden);
  EXPECT_NE(error->message.find("not the transport key of worker key " + to_hex(someone_else)), std::string::npos)
      << error->message;

  client.send(client.hello(client.key()));
  reply = client.next(milliseconds(30000));
  ASSERT_TRUE(reply.has_value() && reply->message.ok());
  EXPECT_TRUE(std::holds_alternative<Welcome>(reply->message.value())) << message_kind(reply->message.value());
  EXPECT_EQ(count(coordinator.stderr_text(), "registered ("), 1u) << coordinator.stderr_text();
}

TEST(Curve, AnAllowListAdmitsItsKeysAndRefusesOthersInTheHandshake) {
  ASSERT_TRUE(init_crypto().ok());
  ScratchDir dir;
  const Identity listed = Identity::generate();
  const Identity unlisted = Identity::generate();
  ASSERT_TRUE(write_key_pair(listed, dir.path() / "listed.key").ok());
  ASSERT_TRUE(write_key_pair(unlisted, dir.path() / "unlisted.key").ok());
  write_file(dir.path() / "workers.txt", "# admitted\n" + to_hex(listed.public_key()) + "  # the only one\n");
  CohortProcess coordinator = start_coordinator(
      dir, job_toml(dir, "allow_list = \"" + (dir.path() / "workers.txt").string() + "\"\n"));
  const std::string key = coordinator_key(dir.path() / "out");
  ASSERT_FALSE(key.empty()) << coordinator.stderr_text();

  CohortProcess refused(worker_args(dir, key, dir.path() / "unlisted.key"), dir.path() / "u.out",
                        dir.path() / "u.err");
  const std::optional<int> refused_code = refused.wait(std::chrono::seconds(60));
  ASSERT_TRUE(refused_code.has_value()) << refused.stderr_text();
  EXPECT_NE(*refused_code, 0);
  EXPECT_NE(refused.stderr_text().find("refused this worker's key"), std::string::npos) << refused.stderr_text();
  EXPECT_NE(refused.stderr_text().find("allow-list"), std::string::npos) << refused.stderr_text();
  // A hand-driven client with the unlisted key gets nothing through either.
  Client outsider(endpoint_in(dir), parsed(key), Identity::from_seed(std::array<uint8_t, 32>{5}));
  outsider.send_raw("garbage from outside the list");
  EXPECT_FALSE(outsider.next(milliseconds(2000)).has_value());

  CohortProcess admitted(worker_args(dir, key, dir.path() / "listed.key"), dir.path() / "a.out",
                         dir.path() / "a.err");
  ASSERT_EQ(coordinator.wait(std::chrono::seconds(240)).value_or(-1), 0) << coordinator.stderr_text();
  EXPECT_EQ(admitted.wait(std::chrono::seconds(60)).value_or(-1), 0) << admitted.stderr_text();
  const auto metrics = nlohmann::json::parse(read_lines(dir.path() / "out" / "metrics.jsonl").at(0));
  EXPECT_EQ(metrics["accepted"], 1);
  EXPECT_EQ(metrics["rejected"], 0);

  const std::string log = coordinator.stderr_text();
  const std::string refused_curve = to_hex(*curve_public_key(unlisted.public_key()));
  EXPECT_NE(log.find("refused a connection: CURVE key " + refused_curve), std::string::npos) << log;
  EXPECT_EQ(count(log, "registered ("), 1u) << log;
  EXPECT_NE(log.find("registered (" + to_hex(listed.public_key()).substr(0, 12)), std::string::npos) << log;
  EXPECT_EQ(log.find("rejected a message"), std::string::npos) << log;
}

TEST(Curve, WithCurveOffAWorkerConnectsInPlaintextAndLearnsTheKeyFromWelcome) {
  ScratchDir dir;
  CohortProcess coordinator = start_coordinator(dir, job_toml(dir, "curve = false\n"));
  CohortProcess worker({"worker", "--coordinator", endpoint_in(dir), "--no-curve", "--threads", "1",
                        "--idle-timeout", "60"},
                       dir.path() / "w.out", dir.path() / "w.err");
  ASSERT_EQ(coordinator.wait(std::chrono::seconds(240)).value_or(-1), 0) << coordinator.stderr_text();
  EXPECT_EQ(worker.wait(std::chrono::seconds(60)).value_or(-1), 0) << worker.stderr_text();
  EXPECT_NE(coordinator.stderr_text().find("without CURVE (plaintext)"), std::string::npos);
  EXPECT_NE(worker.stderr_text().find("coordinator key " + coordinator_key(dir.path() / "out")), std::string::npos)
      << worker.stderr_text();
}

}  // namespace
}  // namespace cohort::testing
