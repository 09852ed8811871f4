// A client that misbehaves in every way it can: garbage, a wrong protocol
// version, updates before registering, unsigned or signed by another key,
// for the wrong round, for an unknown task, with NaN values, with an absurd
// norm, twice, and a flood of messages. Each gets a typed error (a flood:
// one), is counted in metrics.jsonl with the reason, and the coordinator
// goes on to finish the round with a second, honest client. Both clients
// are driven from the test so that the order of events is fixed.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <map>

#include "cohort/tensor_codec.h"
#include "cohort/transport.h"
#include "cohort/wire.h"
#include "harness.h"
#include "support/hand_worker.h"

namespace cohort::testing {
namespace {

using std::chrono::milliseconds;

std::string job_toml(const std::filesystem::path& dir, double deadline_seconds = 60,
                     const std::string& network_extra = "", const std::string& aggregation = "") {
  return R"(
[job]
name = "hostile"
rounds = 1
output_dir = ")" + (dir / "out").string() + R"("
[data]
eval_samples = 500
[training]
local_steps = 5
[round]
min_workers = 2
min_updates = 1
deadline_seconds = )" + std::to_string(deadline_seconds) + R"(
registration_timeout_seconds = 120
[network]
listen = "ipc://)" + (dir / "coordinator.sock").string() + R"("
)" + network_extra + "\n[aggregation]\n" + aggregation + "\n";
}

// The coordinator's key, from the file it publishes in `output_dir`.
PublicKey published_key(const std::filesystem::path& output_dir) {
  Result<PublicKey> key = parse_public_key(coordinator_key(output_dir));
  EXPECT_TRUE(key.ok()) << key.status().to_string();
  return key.ok() ? *key : PublicKey{};
}

struct OwnContext {
  zmq::context_t context;
};

// A hand-driven worker over CURVE, each with its own ZeroMQ context as a
// separate process would have.
class RawClient : private OwnContext, public HandWorker {
 public:
  RawClient(const std::string& endpoint, const std::filesystem::path& output_dir)
      : HandWorker(context, endpoint, published_key(output_dir)) {}
};

TEST(HostileInput, CoordinatorAnswersEachBadMessageWithATypedErrorAndFinishesTheJob) {
  ScratchDir dir;
  write_file(dir.path() / "job.toml", job_toml(dir.path()));
  const std::string endpoint = "ipc://" + (dir.path() / "coordinator.sock").string();
  CohortProcess coordinator({"coordinator", "--config", (dir.path() / "job.toml").string()},
                            dir.path() / "coordinator.out", dir.path() / "coordinator.err");
  ASSERT_TRUE(coordinator.started());
  RawClient client(endpoint, dir.path() / "out");

  client.send_raw("this is not a Cap'n Proto message");
  EXPECT_EQ(client.next_error_code(), ErrorCode::kMalformedMessage);
  client.send_bytes(encode_message_with_version(client.hello(), 99));
  EXPECT_EQ(client.next_error_code(), ErrorCode::kUnsupportedVersion);
  Task fake_task;
  fake_task.round = 1;
  client.send(HandWorker::update_for(fake_task));
  EXPECT_EQ(client.next_error_code(), ErrorCode::kNotRegistered);

  // Register both clients; round 1 starts once two workers are known.
  RawClient honest(endpoint, dir.path() / "out");
  client.send(client.hello());
  ASSERT_TRUE(std::holds_alternative<Welcome>(client.next().message.value()));
  honest.send(honest.hello());
  ASSERT_TRUE(std::holds_alternative<Welcome>(honest.next().message.value()));

  Incoming task_message = client.next();
  ASSERT_TRUE(task_message.message.ok());
  const Task* task = std::get_if<Task>(&task_message.message.value());
  ASSERT_NE(task, nullptr);
  EXPECT_EQ(task->round, 1u);
  Incoming honest_task_message = honest.next();
  const Task* honest_task = std::get_if<Task>(&honest_task_message.message.value());
  ASSERT_NE(honest_task, nullptr);

  client.send(HandWorker::update_for(*task));  // unsigned
  EXPECT_EQ(client.next_error_code(), ErrorCode::kBadSignature);
  client.send(honest.signed_update(HandWorker::update_for(*task)));  // signed by another worker
  EXPECT_EQ(client.next_error_code(), ErrorCode::kBadSignature);

  Update wrong_round = HandWorker::update_for(*task);
  wrong_round.round = 5;
  client.send(client.signed_update(wrong_round));
  EXPECT_EQ(client.next_error_code(), ErrorCode::kWrongRound);

  Update unknown_task = HandWorker::update_for(*task);
  unknown_task.task_id += 1000;
  client.send(client.signed_update(unknown_task));
  EXPECT_EQ(client.next_error_code(), ErrorCode::kUnknownTask);

  Layout layout{task->model.tensors};
  at::Tensor nan_delta = at::full({layout.numel()}, std::numeric_limits<float>::quiet_NaN());
  auto encoded = encode_payload(layout, nan_delta, 1 << 20);
  ASSERT_TRUE(encoded.ok());
  Update poisoned = HandWorker::update_for(*task);
  poisoned.delta = encoded->header();
  client.send(client.signed_update(poisoned), encoded->chunks());
  EXPECT_EQ(client.next_error_code(), ErrorCode::kInvalidUpdate);
  client.send(client.signed_update(poisoned), encoded->chunks());
  EXPECT_EQ(client.next_error_code(), ErrorCode::kDuplicate);

  // The honest client sends a valid (zero) update; the round closes with it
  // alone, and each client is told whether its update was used and why not.
  honest.send_update(*honest_task);

  Incoming result = client.next(milliseconds(120000));
  const RoundResult* round_result = std::get_if<RoundResult>(&result.message.value());
  ASSERT_NE(round_result, nullptr);
  EXPECT_FALSE(round_result->accepted);
  EXPECT_NE(round_result->reason.find("NaN"), std::string::npos) << round_result->reason;
  Incoming honest_result = honest.next(milliseconds(120000));
  const RoundResult* honest_round_result = std::get_if<RoundResult>(&honest_result.message.value());
  ASSERT_NE(honest_round_result, nullptr);
  EXPECT_TRUE(honest_round_result->accepted);
  EXPECT_EQ(honest_round_result->participants, 2u);
  EXPECT_TRUE(std::holds_alternative<Bye>(honest.next().message.value()));

  auto code = coordinator.wait(std::chrono::seconds(120));
  ASSERT_TRUE(code.has_value()) << coordinator.stderr_text();
  EXPECT_EQ(*code, 0) << coordinator.stderr_text();
  auto lines = read_lines(dir.path() / "out" / "metrics.jsonl");
  ASSERT_EQ(lines.size(), 1u);
  auto metrics = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(metrics["participants"], 2);
  EXPECT_EQ(metrics["accepted"], 1);
  EXPECT_EQ(metrics["rejected"], 6);  // 2 bad signatures, wrong round, unknown task, NaN, duplicate
  EXPECT_EQ(metrics["limits_exceeded"], 0);
  EXPECT_TRUE(metrics["model_updated"].get<bool>());
  ASSERT_EQ(metrics["not_aggregated"].size(), 1u);
  EXPECT_NE(metrics["not_aggregated"][0]["reason"].get<std::string>().find("NaN"), std::string::npos);
}

// Two limits a peer controls: the norm of its update, and how fast it sends.
TEST(HostileInput, AbsurdNormsAndFloodsAreRefusedCountedAndExplained) {
  ScratchDir dir;
  write_file(dir.path() / "job.toml",
             job_toml(dir.path(), 60, "messages_per_second = 5\nmessage_burst = 5\n", "max_update_norm = 10\n"));
  const std::string endpoint = "ipc://" + (dir.path() / "coordinator.sock").string();
  CohortProcess coordinator({"coordinator", "--config", (dir.path() / "job.toml").string()},
                            dir.path() / "coordinator.out", dir.path() / "coordinator.err");
  ASSERT_TRUE(coordinator.started());
  RawClient client(endpoint, dir.path() / "out"), honest(endpoint, dir.path() / "out");
  client.send(client.hello());
  ASSERT_TRUE(std::holds_alternative<Welcome>(client.next().message.value()));
  honest.send(honest.hello());
  ASSERT_TRUE(std::holds_alternative<Welcome>(honest.next().message.value()));
  Incoming task_message = client.next();
  const Task* task = std::get_if<Task>(&task_message.message.value());
  ASSERT_NE(task, nullptr);
  Incoming honest_task_message = honest.next();
  const Task* honest_task = std::get_if<Task>(&honest_task_message.message.value());
  ASSERT_NE(honest_task, nullptr);

  // Finite, but with an L2 norm of 100 * sqrt(n).
  Layout layout{task->model.tensors};
  auto huge = encode_payload(layout, at::full({layout.numel()}, 100.0f), 1 << 20);
  ASSERT_TRUE(huge.ok());
  Update absurd = HandWorker::update_for(*task);
  absurd.delta = huge->header();
  client.send(client.signed_update(absurd), huge->chunks());
  EXPECT_EQ(client.next_error_code(), ErrorCode::kInvalidUpdate);

  // 30 messages at once against a burst of 5 (2 already spent): a few are
  // answered (as garbage), then one rateLimited, then silence.
  for (int i = 0; i < 30; ++i) client.send_raw("flood");
  std::map<ErrorCode, int> answers;
  while (auto in = receive_message(client.socket(), false, milliseconds(1500))) {
    ASSERT_TRUE(in->message.ok());
    auto* error = std::get_if<ErrorReply>(&in->message.value());
    ASSERT_NE(error, nullptr);
    ++answers[error->code];
  }
  EXPECT_EQ(answers[ErrorCode::kRateLimited], 1);
  EXPECT_GE(answers[ErrorCode::kMalformedMessage], 1);
  EXPECT_LE(answers[ErrorCode::kMalformedMessage], 5);

  honest.send_update(*honest_task);
  ASSERT_EQ(coordinator.wait(std::chrono::seconds(120)).value_or(-1), 0) << coordinator.stderr_text();
  auto metrics = nlohmann::json::parse(read_lines(dir.path() / "out" / "metrics.jsonl").at(0));
  EXPECT_EQ(metrics["accepted"], 1);
  const int malformed = answers[ErrorCode::kMalformedMessage];
  EXPECT_EQ(metrics["limits_exceeded"], 30 - malformed);  // every flood message past the bucket
  EXPECT_EQ(metrics["rejected"], 1 + 30);                 // the norm, then the whole flood
  ASSERT_EQ(metrics["not_aggregated"].size(), 1u);
  EXPECT_NE(metrics["not_aggregated"][0]["reason"].get<std::string>().find("max_update_norm = 10"),
            std::string::npos)
      << metrics["not_aggregated"].dump();
}

// Each fresh key has a fresh rate-limit bucket, so 150 keys sending one
// garbage message each all get their typed error, but the log gets a few
// lines and a count, not 150 lines (issue 21: 2,000 keys, 2,001 lines).
TEST(HostileInput, GarbageFromManyFreshKeysCostsAFewLogLinesAndACount) {
  constexpr int kKeys = 150;
  ScratchDir dir;
  write_file(dir.path() / "job.toml", job_toml(dir.path()));
  const std::string endpoint = "ipc://" + (dir.path() / "coordinator.sock").string();
  CohortProcess coordinator({"coordinator", "--config", (dir.path() / "job.toml").string()},
                            dir.path() / "coordinator.out", dir.path() / "coordinator.err");
  ASSERT_TRUE(wait_for_stderr(coordinator, "waiting for 2 worker(s)", std::chrono::seconds(120)))
      << coordinator.stderr_text();
  for (int i = 0; i < kKeys; ++i) {
    RawClient stranger(endpoint, dir.path() / "out");
    stranger.send_raw("garbage from a fresh key");
    ASSERT_EQ(stranger.next_error_code(), ErrorCode::kMalformedMessage) << i;
  }
  coordinator.send(SIGTERM);
  ASSERT_EQ(coordinator.wait(std::chrono::seconds(60)), 0) << coordinator.stderr_text();
  const std::string log = coordinator.stderr_text();
  size_t logged = 0;
  for (size_t at = log.find("rejected a message"); at != std::string::npos; at = log.find("rejected a message", at + 1)) {
    ++logged;
  }
  // Every warning is logged or counted (the window may have turned over).
  size_t counted = 0;
  const std::string marker = " similar warning(s) were not logged";
  for (size_t at = log.find(marker); at != std::string::npos; at = log.find(marker, at + 1)) {
    const size_t start = log.find_last_not_of("0123456789", at - 1) + 1;
    counted += std::stoul(log.substr(start, at - start));
  }
  EXPECT_LE(logged, 60u) << log;
  EXPECT_GE(logged, 1u) << log;
  EXPECT_EQ(logged + counted, static_cast<size_t>(kKeys)) << log;
}

TEST(HostileInput, AWorkerThatVanishesMidRoundCostsOnlyItsUpdateAtTheDeadline) {
  ScratchDir dir;
  write_file(dir.path() / "job.toml", job_toml(dir.path(), /*deadline_seconds=*/2));
  const std::string endpoint = "ipc://" + (dir.path() / "coordinator.sock").string();
  CohortProcess coordinator({"coordinator", "--config", (dir.path() / "job.toml").string()},
                            dir.path() / "coordinator.out", dir.path() / "coordinator.err");
  ASSERT_TRUE(coordinator.started());
  RawClient honest(endpoint, dir.path() / "out");
  {
    RawClient vanishing(endpoint, dir.path() / "out");
    vanishing.send(vanishing.hello());
    ASSERT_TRUE(std::holds_alternative<Welcome>(vanishing.next().message.value()));
    honest.send(honest.hello());
    ASSERT_TRUE(std::holds_alternative<Welcome>(honest.next().message.value()));
    ASSERT_TRUE(std::holds_alternative<Task>(vanishing.next().message.value()));
  }  // the socket closes without an update
  Incoming task_message = honest.next();
  const Task* task = std::get_if<Task>(&task_message.message.value());
  ASSERT_NE(task, nullptr);
  honest.send_update(*task);

  const RoundResult* result = nullptr;
  Incoming result_message = honest.next(milliseconds(30000));
  result = std::get_if<RoundResult>(&result_message.message.value());
  ASSERT_NE(result, nullptr);
  EXPECT_TRUE(result->accepted);
  ASSERT_EQ(coordinator.wait(std::chrono::seconds(60)).value_or(-1), 0) << coordinator.stderr_text();
  auto metrics = nlohmann::json::parse(read_lines(dir.path() / "out" / "metrics.jsonl").at(0));
  EXPECT_EQ(metrics["participants"], 2);
  EXPECT_EQ(metrics["accepted"], 1);
  EXPECT_GE(metrics["seconds"]["collect"].get<double>(), 1.9);
  EXPECT_LT(metrics["seconds"]["collect"].get<double>(), 10.0);
  EXPECT_NE(coordinator.stderr_text().find("sent no update"), std::string::npos);
}

}  // namespace
}  // namespace cohort::testing
