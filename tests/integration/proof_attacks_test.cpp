// Workers driven by hand against a coordinator that audits every task: one
// commits to a made-up trajectory and reveals states that are not in it,
// one equivocates (two signed commitments for one task), one never reveals,
// one commits to a trajectory that does not start from the announced model.
// Each is refused, slashed and banned, gets a signed receipt saying so, and
// the ledger still verifies. The honest-looking parts (signed task, secret
// that matches its commitment, challenge the secret selects) are checked
// from the worker's side on the way.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <ATen/ATen.h>

#include "cohort/proof_of_learning.h"
#include "cohort/reveal_payload.h"
#include "cohort/tensor_codec.h"
#include "cohort/transport.h"
#include "cohort/wire.h"
#include "harness.h"

namespace cohort::testing {
namespace {

using std::chrono::milliseconds;

class ProvingClient {
 public:
  // Connects with CURVE to the coordinator whose published key is `coordinator_key`.
  ProvingClient(const std::string& endpoint, const std::string& coordinator_key)
      : identity_(Identity::generate()), socket_(context_, zmq::socket_type::dealer) {
    socket_.set(zmq::sockopt::linger, 0);
    Result<PublicKey> coordinator = parse_public_key(coordinator_key);
    EXPECT_TRUE(coordinator.ok()) << coordinator.status().to_string();
    if (coordinator.ok()) {
      EXPECT_TRUE(make_curve_client(socket_, identity_, *coordinator).ok());
    }
    socket_.connect(endpoint);
  }

  void send(Message message, Frames payload = {}) {
    ASSERT_TRUE(send_message(socket_, {std::move(message), std::move(payload)}).ok());
  }

  Message next(milliseconds timeout = milliseconds(60000)) {
    auto in = receive_message(socket_, false, timeout);
    EXPECT_TRUE(in.has_value() && in->message.ok()) << "no valid message from the coordinator";
    if (!in || !in->message.ok()) return Bye{"<nothing>"};
    return std::move(in->message.value());
  }

  // Sends Hello and takes the Welcome with the coordinator's key.
  void register_worker() {
    Hello hello;
    hello.worker_key = identity_.public_key();
    hello.device.name = "cpu";
    hello.dataset = DatasetInfo{"fashion-mnist", 60000, 10};
    // The coordinator process may not be listening yet: a send without a
    // connected peer fails, so try until it goes through.
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!send_message(socket_, {hello}).ok()) {
      ASSERT_LT(std::chrono::steady_clock::now(), give_up) << "the coordinator never accepted a connection";
      std::this_thread::sleep_for(milliseconds(100));
    }
    Message welcome = next();
    ASSERT_TRUE(std::holds_alternative<Welcome>(welcome));
    coordinator_ = std::get<Welcome>(welcome).coordinator_key;
  }

  // Takes the round's task and checks its signature.
  void take_task() {
    Message task = next();
    ASSERT_TRUE(std::holds_alternative<Task>(task));
    task_ = std::get<Task>(task);
    ASSERT_TRUE(task_.proof.enabled());
    EXPECT_TRUE(verify_signature(coordinator_, task_signing_bytes(task_, identity_.public_key()), task_.signature));
  }

  // A made-up trajectory whose anchors are right: leaf 0 is the announced
  // model, the last leaf is at the last step (unless `bad_anchor`, which
  // starts it from another model). `salt` changes the root.
  void make_commitment(uint8_t salt, bool bad_anchor = false) {
    const uint32_t k = task_.proof.params.segment_steps;
    const uint32_t segments = segment_count(task_.proof.total_steps, k);
    commitment_ = Commitment{};
    commitment_.total_steps = task_.proof.total_steps;
    commitment_.segment_steps = k;
    for (uint32_t j = 0; j <= segments; ++j) {
      LeafData leaf;
      leaf.index = j;
      leaf.step = j == 0 ? 0 : segment_end(j, k, task_.proof.total_steps);
      if (j == 0) {
        leaf.parameters = task_.model.digest;
        if (bad_anchor) leaf.parameters[0] ^= 1;
        leaf.momentum = fresh_momentum_digest();
      } else {
        leaf.parameters.fill(static_cast<uint8_t>(salt + j));
        leaf.momentum.fill(static_cast<uint8_t>(salt + 2 * j));
        leaf.batches.fill(static_cast<uint8_t>(salt + 3 * j));
      }
      commitment_.leaves.push_back(leaf);
    }
    commitment_.root = commitment_root(task_.task_id, commitment_.leaves);
  }

  void send_update() {
    const Layout layout{task_.model.tensors};
    auto zero = encode_payload(layout, at::zeros({layout.numel()}), 1 << 20);
    ASSERT_TRUE(zero.ok());
    Update update;
    update.round = task_.round;
    update.task_id = task_.task_id;
    update.num_samples = 320;
    update.base_model_hash = task_.model.digest;
    update.delta = zero->header();
    const auto last = static_cast<uint32_t>(commitment_.leaves.size() - 1);
    update.commitment = UpdateCommitment{commitment_.root, commitment_.total_steps, commitment_.segment_steps,
                                         open_leaf(commitment_, task_.task_id, 0),
                                         open_leaf(commitment_, task_.task_id, last)};
    update.signature = identity_.sign(update_signing_bytes(update, identity_.public_key()));
    send(update, zero->chunks());
  }

  // The challenge must be signed, match the secret's commitment, and select
  // what the secret selects.
  ChallengeMessage take_challenge() {
    Message message = next();
    EXPECT_TRUE(std::holds_alternative<ChallengeMessage>(message)) << message_kind(message);
    if (!std::holds_alternative<ChallengeMessage>(message)) return {};
    ChallengeMessage challenge = std::get<ChallengeMessage>(message);
    EXPECT_TRUE(verify_signature(coordinator_, challenge_signing_bytes(challenge, identity_.public_key()),
                                 challenge.signature));
    EXPECT_EQ(secret_commitment(challenge.secret), task_.proof.secret_commitment);
    EXPECT_EQ(challenge.challenge,
              derive_challenge(challenge.secret, commitment_.root, identity_.public_key(), task_.task_id,
                               static_cast<uint32_t>(commitment_.leaves.size() - 1), task_.proof.challenge));
    EXPECT_TRUE(challenge.challenge.audited);
    return challenge;
  }

  // Valid Merkle proofs, but states (zeros) that are not the committed ones.
  void reveal_zeros(const ChallengeMessage& challenge) {
    const int64_t count = Layout{task_.model.tensors}.numel();
    std::vector<SegmentOpening> openings;
    Reveal reveal;
    reveal.round = task_.round;
    reveal.task_id = task_.task_id;
    for (uint32_t segment : challenge.challenge.segments) {
      SegmentOpening opening;
      opening.segment = segment;
      opening.before_state = TrainingState{at::zeros({count}), at::zeros({count}), 0};
      opening.after_state = TrainingState{at::zeros({count}), at::zeros({count}), 0};
      openings.push_back(opening);
      reveal.segments.push_back(SegmentProof{segment, open_leaf(commitment_, task_.task_id, segment - 1),
                                             open_leaf(commitment_, task_.task_id, segment)});
    }
    PackedStates states = pack_reveal_states(openings);
    auto encoded = encode_payload(states.layout, states.flat, 1 << 20);
    ASSERT_TRUE(encoded.ok());
    reveal.states = encoded->header();
    reveal.signature = identity_.sign(reveal_signing_bytes(reveal, identity_.public_key()));
    send(reveal, encoded->chunks());
  }

  // The round result must carry a valid receipt of a failed, slashed task;
  // then the coordinator says goodbye. `reason` is part of the receipt's.
  void expect_slashed_and_banned(const std::string& reason) {
    Message message = next(milliseconds(120000));
    while (std::holds_alternative<ErrorReply>(message)) message = next(milliseconds(120000));
    ASSERT_TRUE(std::holds_alternative<RoundResult>(message)) << message_kind(message);
    const RoundResult& result = std::get<RoundResult>(message);
    EXPECT_FALSE(result.accepted);
    ASSERT_TRUE(result.receipt.has_value());
    EXPECT_TRUE(verify_receipt(*result.receipt));
    EXPECT_EQ(result.receipt->coordinator, coordinator_);
    EXPECT_EQ(result.receipt->worker, identity_.public_key());
    EXPECT_EQ(result.receipt->verdict, Verdict::kFailed);
    EXPECT_EQ(result.receipt->reward, 0);
    EXPECT_EQ(result.receipt->slashed, 1000 * kMicrosPerToken);
    EXPECT_NE(result.receipt->reason.find(reason), std::string::npos) << result.receipt->reason;
    Message bye = next();
    ASSERT_TRUE(std::holds_alternative<Bye>(bye));
    EXPECT_NE(std::get<Bye>(bye).reason.find("banned"), std::string::npos);
  }

 private:
  Identity identity_;
  zmq::context_t context_;
  zmq::socket_t socket_;
  PublicKey coordinator_{};
  Task task_;
  Commitment commitment_;
};

TEST(ProofAttacks, FakeRevealEquivocationMissingRevealAndBadAnchorAreEachSlashedAndBanned) {
  ScratchDir dir;
  const std::string endpoint = "ipc://" + (dir.path() / "coordinator.sock").string();
  write_file(dir.path() / "job.toml", R"(
[job]
rounds = 1
output_dir = ")" + (dir.path() / "out").string() + R"("
[data]
eval_samples = 500
[training]
local_steps = 30
[round]
min_workers = 4
[network]
listen = ")" + endpoint + R"("
[proof]
segment_steps = 10
audit_probability = 1.0
segments_per_audit = 1
reveal_seconds = 2
[ledger]
reward_per_round = 10
registration_grant = 1000
)");
  CohortProcess coordinator({"coordinator", "--config", (dir.path() / "job.toml").string()},
                            dir.path() / "coordinator.out", dir.path() / "coordinator.err");
  ASSERT_TRUE(coordinator.started());
  const std::string key = coordinator_key(dir.path() / "out");
  ProvingClient faker(endpoint, key), equivocator(endpoint, key), silent(endpoint, key), misanchored(endpoint, key);
  // Round 1 starts once all four are registered.
  for (ProvingClient* client : {&faker, &equivocator, &silent, &misanchored}) client->register_worker();
  for (ProvingClient* client : {&faker, &equivocator, &silent, &misanchored}) client->take_task();
  ASSERT_FALSE(HasFailure()) << coordinator.stderr_text();

  faker.make_commitment(1);
  faker.send_update();
  faker.reveal_zeros(faker.take_challenge());

  equivocator.make_commitment(2);
  equivocator.send_update();
  equivocator.take_challenge();
  equivocator.make_commitment(3);  // another trajectory for the same task
  equivocator.send_update();

  silent.make_commitment(4);
  silent.send_update();
  silent.take_challenge();  // and never reveals

  misanchored.make_commitment(5, /*bad_anchor=*/true);
  misanchored.send_update();  // answered with an error, not a challenge

  faker.expect_slashed_and_banned("do not match leaf");
  equivocator.expect_slashed_and_banned("equivocation");
  silent.expect_slashed_and_banned("no reveal");
  misanchored.expect_slashed_and_banned("invalid commitment");

  ASSERT_EQ(coordinator.wait(std::chrono::seconds(120)).value_or(-1), 0) << coordinator.stderr_text();
  const std::string log = coordinator.stderr_text();
  EXPECT_NE(log.find("equivocated"), std::string::npos) << log;
  EXPECT_NE(log.find("no reveal before the reveal deadline"), std::string::npos) << log;
  auto metrics = nlohmann::json::parse(read_lines(dir.path() / "out" / "metrics.jsonl").at(0));
  EXPECT_EQ(metrics["accepted"], 0);
  EXPECT_FALSE(metrics["model_updated"].get<bool>());
  EXPECT_EQ(metrics["paid"], 0);
  EXPECT_EQ(metrics["slashed"], 4000 * kMicrosPerToken);

  CohortProcess verify({"ledger", "verify", (dir.path() / "out" / "ledger.db").string()}, dir.path() / "v.out",
                       dir.path() / "v.err");
  EXPECT_EQ(verify.wait(std::chrono::seconds(60)).value_or(-1), 0) << verify.stderr_text();
}

}  // namespace
}  // namespace cohort::testing
