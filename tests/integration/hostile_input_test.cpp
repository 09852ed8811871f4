// A client that misbehaves in every way it can short of flooding: garbage,
// a wrong protocol version, updates before registering, unsigned or signed
// by another key, for the wrong round, for an unknown task, with NaN
// values, and twice. Each gets a typed error,
// and the coordinator goes on to finish the round with a second, honest
// client. Both clients are driven from the test so that the order of events
// is fixed.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "cohort/tensor_codec.h"
#include "cohort/wire.h"
#include "harness.h"

namespace cohort::testing {
namespace {

using std::chrono::milliseconds;

std::string job_toml(const std::filesystem::path& dir, double deadline_seconds = 60) {
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
)";
}

// A worker driven by hand; it signs what it sends with its own key.
class RawClient {
 public:
  explicit RawClient(const std::string& endpoint)
      : identity_(Identity::generate()), socket_(context_, zmq::socket_type::dealer) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.connect(endpoint);
  }

  Hello hello() const {
    Hello hello;
    hello.worker_key = identity_.public_key();
    hello.device.name = "cpu";
    hello.dataset = DatasetInfo{"fashion-mnist", 60000, 10};
    return hello;
  }

  Update signed_update(Update update) const {
    update.signature = identity_.sign(update_signing_bytes(update, identity_.public_key()));
    return update;
  }

  void send_raw(const std::string& bytes) { socket_.send(zmq::buffer(bytes)); }
  void send(Message message, std::vector<zmq::message_t> payload = {}) {
    ASSERT_TRUE(send_message(socket_, {std::move(message), std::move(payload)}).ok());
  }
  void send_bytes(const std::vector<uint8_t>& envelope) {
    socket_.send(zmq::buffer(envelope.data(), envelope.size()));
  }

  // The next message, which must decode.
  Incoming next(milliseconds timeout = milliseconds(60000)) {
    auto in = receive_message(socket_, false, timeout);
    EXPECT_TRUE(in.has_value()) << "no reply from the coordinator";
    if (!in) return Incoming{};
    EXPECT_TRUE(in->message.ok()) << in->message.status().to_string();
    return std::move(*in);
  }

  ErrorCode next_error_code() {
    Incoming in = next();
    if (!in.message.ok()) return ErrorCode::kInternal;
    auto* error = std::get_if<ErrorReply>(&in.message.value());
    EXPECT_NE(error, nullptr) << "expected an error, got " << message_kind(in.message.value());
    return error ? error->code : ErrorCode::kInternal;
  }

 private:
  Identity identity_;
  zmq::context_t context_;
  zmq::socket_t socket_;
};

Update update_for(const Task& task) {
  Update update;
  update.round = task.round;
  update.task_id = task.task_id;
  update.num_samples = 32;
  update.base_model_hash = task.model.digest;
  return update;
}

TEST(HostileInput, CoordinatorAnswersEachBadMessageWithATypedErrorAndFinishesTheJob) {
  ScratchDir dir;
  write_file(dir.path() / "job.toml", job_toml(dir.path()));
  const std::string endpoint = "ipc://" + (dir.path() / "coordinator.sock").string();
  CohortProcess coordinator({"coordinator", "--config", (dir.path() / "job.toml").string()},
                            dir.path() / "coordinator.out", dir.path() / "coordinator.err");
  ASSERT_TRUE(coordinator.started());
  RawClient client(endpoint);

  client.send_raw("this is not a Cap'n Proto message");
  EXPECT_EQ(client.next_error_code(), ErrorCode::kMalformedMessage);
  client.send_bytes(encode_message_with_version(client.hello(), 99));
  EXPECT_EQ(client.next_error_code(), ErrorCode::kUnsupportedVersion);
  Task fake_task;
  fake_task.round = 1;
  client.send(update_for(fake_task));
  EXPECT_EQ(client.next_error_code(), ErrorCode::kNotRegistered);

  // Register both clients; round 1 starts once two workers are known.
  RawClient honest(endpoint);
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

  client.send(update_for(*task));  // unsigned
  EXPECT_EQ(client.next_error_code(), ErrorCode::kBadSignature);
  client.send(honest.signed_update(update_for(*task)));  // signed by another worker
  EXPECT_EQ(client.next_error_code(), ErrorCode::kBadSignature);

  Update wrong_round = update_for(*task);
  wrong_round.round = 5;
  client.send(client.signed_update(wrong_round));
  EXPECT_EQ(client.next_error_code(), ErrorCode::kWrongRound);

  Update unknown_task = update_for(*task);
  unknown_task.task_id += 1000;
  client.send(client.signed_update(unknown_task));
  EXPECT_EQ(client.next_error_code(), ErrorCode::kUnknownTask);

  Layout layout{task->model.tensors};
  at::Tensor nan_delta = at::full({layout.numel()}, std::numeric_limits<float>::quiet_NaN());
  auto encoded = encode_payload(layout, nan_delta, 1 << 20);
  ASSERT_TRUE(encoded.ok());
  Update poisoned = update_for(*task);
  poisoned.delta = encoded->header();
  client.send(client.signed_update(poisoned), encoded->chunks());
  EXPECT_EQ(client.next_error_code(), ErrorCode::kInvalidUpdate);
  client.send(client.signed_update(poisoned), encoded->chunks());
  EXPECT_EQ(client.next_error_code(), ErrorCode::kDuplicate);

  // The honest client sends a valid (zero) update; the round closes with it
  // alone, and each client is told whether its update was used and why not.
  auto zero = encode_payload(layout, at::zeros({layout.numel()}), 1 << 20);
  ASSERT_TRUE(zero.ok());
  Update valid = update_for(*honest_task);
  valid.delta = zero->header();
  honest.send(honest.signed_update(valid), zero->chunks());

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
  EXPECT_TRUE(metrics["model_updated"].get<bool>());
}

TEST(HostileInput, AWorkerThatVanishesMidRoundCostsOnlyItsUpdateAtTheDeadline) {
  ScratchDir dir;
  write_file(dir.path() / "job.toml", job_toml(dir.path(), /*deadline_seconds=*/2));
  const std::string endpoint = "ipc://" + (dir.path() / "coordinator.sock").string();
  CohortProcess coordinator({"coordinator", "--config", (dir.path() / "job.toml").string()},
                            dir.path() / "coordinator.out", dir.path() / "coordinator.err");
  ASSERT_TRUE(coordinator.started());
  RawClient honest(endpoint);
  {
    RawClient vanishing(endpoint);
    vanishing.send(vanishing.hello());
    ASSERT_TRUE(std::holds_alternative<Welcome>(vanishing.next().message.value()));
    honest.send(honest.hello());
    ASSERT_TRUE(std::holds_alternative<Welcome>(honest.next().message.value()));
    ASSERT_TRUE(std::holds_alternative<Task>(vanishing.next().message.value()));
  }  // the socket closes without an update
  Incoming task_message = honest.next();
  const Task* task = std::get_if<Task>(&task_message.message.value());
  ASSERT_NE(task, nullptr);
  Layout layout{task->model.tensors};
  auto zero = encode_payload(layout, at::zeros({layout.numel()}), 1 << 20);
  ASSERT_TRUE(zero.ok());
  Update valid = update_for(*task);
  valid.delta = zero->header();
  honest.send(honest.signed_update(valid), zero->chunks());

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
