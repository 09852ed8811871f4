// The coordinator's side of shipping a TorchScript archive (docs/PROTOCOL.md,
// "Model archives"): the signed task names the archive; a registered worker
// that asks gets it, in chunks, byte for byte; another digest, an
// unregistered peer and a fourth request from the same key are refused.
#include <gtest/gtest.h>

#include "in_process_job.h"
#include "support/torchscript_fixtures.h"

namespace cohort::testing {
namespace {

JobShape archive_job() {
  JobShape shape;
  shape.min_workers = 1;
  shape.model = "path = \"" + torchscript_fixture("small.pt").string() + "\"";
  return shape;
}

TEST(ModelRequests, ARegisteredWorkerGetsTheArchiveTheTaskNames) {
  InProcessJob job(archive_job());
  ASSERT_TRUE(job.started());
  HandWorker worker = job.hand_worker();
  ASSERT_TRUE(register_worker(worker));
  std::optional<ReceivedTask> task = next_task(worker);
  ASSERT_TRUE(task);
  const ModelSource source = torchscript_source();
  EXPECT_EQ(task->task.model_name, kTorchScriptModelName);
  EXPECT_EQ(task->task.model_archive, source.archive_digest);

  worker.send(ModelRequest{task->task.model_archive});
  Incoming in = worker.next();
  ASSERT_TRUE(in.message.ok());
  const auto* archive = std::get_if<ModelArchiveMessage>(&in.message.value());
  ASSERT_NE(archive, nullptr) << message_kind(in.message.value());
  Result<ModelSource> received = received_archive(*archive, in.payload, task->task.model_archive);
  ASSERT_TRUE(received.ok()) << received.status().to_string();
  EXPECT_EQ(*received->archive, *source.archive);

  worker.send(ModelRequest{Digest{7}});
  EXPECT_EQ(worker.next_error_code(), ErrorCode::kUnknownTask);
  job.stop();
  job.finish();
}

TEST(ModelRequests, UnregisteredPeersAndRepeatedRequestsAreRefused) {
  InProcessJob job(archive_job());
  ASSERT_TRUE(job.started());
  const Digest digest = torchscript_source().archive_digest;
  HandWorker stranger = job.hand_worker();
  stranger.send(ModelRequest{digest});
  EXPECT_EQ(stranger.next_error_code(), ErrorCode::kNotRegistered);

  HandWorker worker = job.hand_worker();
  ASSERT_TRUE(register_worker(worker));
  ASSERT_TRUE(next_task(worker));
  for (int i = 0; i < 3; ++i) {
    worker.send(ModelRequest{digest});
    EXPECT_TRUE(worker.next_as<ModelArchiveMessage>()) << "request " << i + 1;
  }
  worker.send(ModelRequest{digest});
  std::optional<ErrorReply> refused = worker.next_as<ErrorReply>();
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->code, ErrorCode::kRateLimited);
  EXPECT_NE(refused->message.find("sent to this worker 3 times already"), std::string::npos) << refused->message;
  job.stop();
  job.finish();
}

}  // namespace
}  // namespace cohort::testing
