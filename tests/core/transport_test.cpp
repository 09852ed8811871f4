// CurveZMQ keys derived from Ed25519 identities, the ZAP handler's
// admission rules, and how a client learns that its handshake failed.
// Server and clients run over TCP loopback in one process, each side with
// its own ZeroMQ context as separate processes would have.
#include "cohort/transport.h"

#include <gtest/gtest.h>
#include <sodium.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "cohort/wire.h"

namespace cohort {
namespace {

using std::chrono::milliseconds;

std::array<uint8_t, 32> seed_of(uint8_t fill) {
  std::array<uint8_t, 32> seed{};
  seed.fill(fill);
  return seed;
}

TEST(TransportKeys, DerivedKeysAreLibsodiumsConversionOfTheIdentity) {
  ASSERT_TRUE(init_crypto().ok());
  const std::array<uint8_t, 32> seed = seed_of(7);
  const Identity identity = Identity::from_seed(seed);
  unsigned char ed_public[crypto_sign_PUBLICKEYBYTES], ed_secret[crypto_sign_SECRETKEYBYTES];
  crypto_sign_seed_keypair(ed_public, ed_secret, seed.data());
  CurveKey want_public{}, want_secret{};
  ASSERT_EQ(crypto_sign_ed25519_pk_to_curve25519(want_public.data(), ed_public), 0);
  ASSERT_EQ(crypto_sign_ed25519_sk_to_curve25519(want_secret.data(), ed_secret), 0);

  const CurveKeyPair keys(identity);
  EXPECT_EQ(keys.public_key(), want_public);
  EXPECT_EQ(keys.secret_key(), want_secret);
  // The halves belong together: X25519(secret, base point) is the public key.
  CurveKey from_secret{};
  ASSERT_EQ(crypto_scalarmult_base(from_secret.data(), keys.secret_key().data()), 0);
  EXPECT_EQ(from_secret, keys.public_key());
  // Anyone can derive the public half from the published Ed25519 key.
  Result<CurveKey> published = curve_public_key(identity.public_key());
  ASSERT_TRUE(published.ok());
  EXPECT_EQ(*published, keys.public_key());
  EXPECT_NE(CurveKeyPair(Identity::from_seed(seed_of(8))).public_key(), keys.public_key());
}

TEST(TransportKeys, BytesThatAreNoEd25519KeyHaveNoCurveKey) {
  ASSERT_TRUE(init_crypto().ok());
  PublicKey small_order{};  // the identity point, encoded as y = 1
  small_order[0] = 1;
  Result<CurveKey> curve = curve_public_key(small_order);
  ASSERT_FALSE(curve.ok());
  EXPECT_EQ(curve.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(curve.status().message().find("not a valid Ed25519 public key"), std::string::npos);
  EXPECT_FALSE(authenticated_as(to_hex(small_order), small_order));
}

// A coordinator-like server: a CURVE ROUTER with a ZAP handler.
class CurveServer {
 public:
  explicit CurveServer(const Admission& admission = {})
      : identity_(Identity::from_seed(seed_of(1))),
        log_(log_text_, LogLevel::kInfo, "test"),
        zap_(ZapHandler::start(context_, admission, log_)),
        router_(context_, zmq::socket_type::router) {
    router_.set(zmq::sockopt::linger, 0);
    make_curve_server(router_, identity_);
    router_.bind("tcp://127.0.0.1:*");
  }

  const PublicKey& key() const { return identity_.public_key(); }
  std::string endpoint() const { return router_.get(zmq::sockopt::last_endpoint); }
  const ZapHandler& zap() const { return **zap_; }
  bool zap_started() const { return zap_.ok(); }
  std::string log() const { return log_text_.str(); }

  std::optional<Incoming> receive(milliseconds timeout) { return receive_message(router_, true, timeout); }

 private:
  Identity identity_;
  std::ostringstream log_text_;
  Logger log_;
  zmq::context_t context_;
  Result<std::unique_ptr<ZapHandler>> zap_;
  zmq::socket_t router_;
};

struct CurveClient {
  explicit CurveClient(uint8_t seed) : identity(Identity::from_seed(seed_of(seed))) {
    socket.set(zmq::sockopt::linger, 0);
    // A refused client has no connection to queue on, so a send would block.
    socket.set(zmq::sockopt::sndtimeo, 1000);
  }
  Identity identity;
  zmq::context_t context;
  zmq::socket_t socket{context, zmq::socket_type::dealer};
};

TEST(TransportCurve, DerivedClientReachesDerivedServerWhichSeesTheClientsKey) {
  ASSERT_TRUE(init_crypto().ok());
  CurveServer server;
  ASSERT_TRUE(server.zap_started());
  CurveClient client(2);
  ASSERT_TRUE(make_curve_client(client.socket, client.identity, server.key()).ok());
  ASSERT_TRUE(connect_authenticated(client.context, client.socket, server.endpoint(), milliseconds(10000)).ok());
  ASSERT_TRUE(send_message(client.socket, {Bye{"over CURVE"}}).ok());

  std::optional<Incoming> in = server.receive(milliseconds(10000));
  ASSERT_TRUE(in.has_value());
  ASSERT_TRUE(in->message.ok());
  EXPECT_EQ(std::get<Bye>(in->message.value()).reason, "over CURVE");
  EXPECT_EQ(in->user_id, to_hex(CurveKeyPair(client.identity).public_key()));
  EXPECT_TRUE(authenticated_as(in->user_id, client.identity.public_key()));
  EXPECT_FALSE(authenticated_as(in->user_id, Identity::from_seed(seed_of(3)).public_key()));
  EXPECT_FALSE(authenticated_as("", client.identity.public_key()));
  EXPECT_EQ(server.zap().admitted(), 1u);
  EXPECT_EQ(server.zap().refused(), 0u);
}

TEST(TransportCurve, AClientPinningAnotherServerKeyFailsItsHandshakeAndDeliversNothing) {
  ASSERT_TRUE(init_crypto().ok());
  CurveServer server;
  CurveClient client(2);
  ASSERT_TRUE(make_curve_client(client.socket, client.identity, Identity::from_seed(seed_of(9)).public_key()).ok());
  Status status = connect_authenticated(client.context, client.socket, server.endpoint(), milliseconds(10000));
  EXPECT_EQ(status.code(), Status::Code::kFailedPrecondition) << status.to_string();
  EXPECT_NE(status.message().find("--coordinator-key"), std::string::npos) << status.message();
  (void)send_message(client.socket, {Bye{"never delivered"}});
  EXPECT_FALSE(server.receive(milliseconds(500)).has_value());
  EXPECT_EQ(server.zap().admitted(), 0u);
}

TEST(TransportCurve, APlaintextClientDeliversNothing) {
  ASSERT_TRUE(init_crypto().ok());
  CurveServer server;
  CurveClient client(2);
  client.socket.connect(server.endpoint());
  ASSERT_TRUE(send_message(client.socket, {Bye{"in the clear"}}).ok());
  EXPECT_FALSE(server.receive(milliseconds(1000)).has_value());
  EXPECT_EQ(server.zap().admitted(), 0u);
}

TEST(TransportCurve, AnAllowListAdmitsItsKeysAndRefusesOthersInTheHandshake) {
  ASSERT_TRUE(init_crypto().ok());
  CurveClient listed(2), unlisted(3);
  CurveServer server(Admission{std::set<PublicKey>{listed.identity.public_key()}});
  ASSERT_TRUE(server.zap_started());
  for (CurveClient* client : {&listed, &unlisted}) {
    ASSERT_TRUE(make_curve_client(client->socket, client->identity, server.key()).ok());
  }
  EXPECT_TRUE(connect_authenticated(listed.context, listed.socket, server.endpoint(), milliseconds(10000)).ok());
  Status refused = connect_authenticated(unlisted.context, unlisted.socket, server.endpoint(), milliseconds(10000));
  EXPECT_EQ(refused.code(), Status::Code::kFailedPrecondition) << refused.to_string();
  EXPECT_NE(refused.message().find("allow-list"), std::string::npos) << refused.message();

  ASSERT_TRUE(send_message(unlisted.socket, {Bye{"unlisted"}}).ok());
  ASSERT_TRUE(send_message(listed.socket, {Bye{"listed"}}).ok());
  std::optional<Incoming> in = server.receive(milliseconds(10000));
  ASSERT_TRUE(in.has_value() && in->message.ok());
  EXPECT_EQ(std::get<Bye>(in->message.value()).reason, "listed");
  EXPECT_FALSE(server.receive(milliseconds(500)).has_value());
  EXPECT_EQ(server.zap().admitted(), 1u);
  EXPECT_GE(server.zap().refused(), 1u);
  EXPECT_NE(server.log().find(to_hex(CurveKeyPair(unlisted.identity).public_key()) + " from"), std::string::npos)
      << server.log();
}

TEST(TransportCurve, NoServerMeansADeadlineNotAnAuthenticationError) {
  ASSERT_TRUE(init_crypto().ok());
  CurveClient client(2);
  ASSERT_TRUE(make_curve_client(client.socket, client.identity, Identity::from_seed(seed_of(1)).public_key()).ok());
  const std::string nowhere = "ipc://" + (std::filesystem::temp_directory_path() / "cohort-transport-nobody").string();
  Status status = connect_authenticated(client.context, client.socket, nowhere, milliseconds(300));
  EXPECT_EQ(status.code(), Status::Code::kDeadlineExceeded) << status.to_string();
}

TEST(TransportCurve, OneZapHandlerPerContext) {
  ASSERT_TRUE(init_crypto().ok());
  std::ostringstream text;
  Logger log(text, LogLevel::kQuiet, "test");
  zmq::context_t context;
  Result<std::unique_ptr<ZapHandler>> first = ZapHandler::start(context, {}, log);
  ASSERT_TRUE(first.ok());
  Result<std::unique_ptr<ZapHandler>> second = ZapHandler::start(context, {}, log);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Status::Code::kIoError);
}

class AllowListTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(init_crypto().ok());
    path_ = std::filesystem::temp_directory_path() /
            ("cohort-allow-list-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
  }
  void TearDown() override { std::filesystem::remove(path_); }
  void write(const std::string& text) { std::ofstream(path_) << text; }
  std::filesystem::path path_;
};

TEST_F(AllowListTest, ReadsOneHexKeyPerLineWithCommentsAndBlankLines) {
  const PublicKey a = Identity::from_seed(seed_of(2)).public_key();
  const PublicKey b = Identity::from_seed(seed_of(3)).public_key();
  write("# volunteers admitted to job 7\n\n" + to_hex(a) + "\n  " + to_hex(b) + "   # bob's laptop\r\n" +
        to_hex(a) + "\n");
  Result<std::set<PublicKey>> keys = read_allow_list(path_);
  ASSERT_TRUE(keys.ok()) << keys.status().to_string();
  EXPECT_EQ(*keys, (std::set<PublicKey>{a, b}));
}

TEST_F(AllowListTest, AnythingButAKeyIsAnErrorNamingTheLine) {
  write("# ok\n" + to_hex(Identity::from_seed(seed_of(2)).public_key()) + "\nnot-a-key\n");
  Result<std::set<PublicKey>> keys = read_allow_list(path_);
  ASSERT_FALSE(keys.ok());
  EXPECT_EQ(keys.status().code(), Status::Code::kCorruption);
  EXPECT_NE(keys.status().message().find(path_.string() + ": line 3: "), std::string::npos)
      << keys.status().message();

  PublicKey small_order{};
  small_order[0] = 1;
  write(to_hex(small_order) + "\n");
  keys = read_allow_list(path_);
  ASSERT_FALSE(keys.ok());
  EXPECT_NE(keys.status().message().find("line 1: the key"), std::string::npos) << keys.status().message();
}

TEST_F(AllowListTest, AMissingFileIsNotFound) {
  EXPECT_EQ(read_allow_list(path_).status().code(), Status::Code::kNotFound);
}

}  // namespace
}  // namespace cohort
