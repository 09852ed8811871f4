#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "cohort/coordinator.h"
#include "cohort/proof_of_learning.h"

namespace cohort {
namespace {

namespace fs = std::filesystem;

Layout small_layout() {
  return Layout{{
      TensorSpec{"fc.bias", DType::kFloat32, {2}},
      TensorSpec{"fc.weight", DType::kFloat32, {2, 3}},
  }};
}

Checkpoint small_checkpoint(uint32_t round = 4) {
  Checkpoint c;
  c.round = round;
  c.model_name = "mlp";
  c.layout = small_layout();
  c.flat = at::tensor({0.5f, -1.25f, 1.0f, 2.0f, 3.0f, -4.0f, 1e-7f, 65504.0f});
  c.digest = digest_of(c.layout, c.flat);
  return c;
}

std::vector<float> values_of(const at::Tensor& t) {
  at::Tensor c = t.contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}

// A checkpoint file built by hand from the documented format.
std::string hand_made_file(const std::string& json, const std::string& data) {
  std::string out = "COHORTCK";
  put_u32(out, 1);
  put_u32(out, static_cast<uint32_t>(json.size()));
  return out + json + data;
}

class CheckpointTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(init_crypto().ok()); }

  void SetUp() override {
    std::random_device rd;
    dir_ = fs::temp_directory_path() /
           ("cohort-checkpoint-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
    ASSERT_TRUE(fs::create_directory(dir_));
    path_ = dir_ / "model.ck";
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes small_checkpoint(), then replaces the file with `edit` applied.
  template <class Edit>
  Status read_after_edit(Edit edit) {
    EXPECT_TRUE(write_checkpoint(path_, small_checkpoint()).ok());
    std::string bytes = read_file(path_);
    edit(bytes);
    write_file(path_, bytes);
    return read_checkpoint(path_).status();
  }

  // Writes small_checkpoint()'s parameters under a hand-made header with the
  // required fields and `more_fields` (JSON members, each after a comma),
  // then reads it.
  Result<Checkpoint> read_with_header_fields(const std::string& more_fields) {
    const Checkpoint c = small_checkpoint();
    const std::string json = R"({"round":4,"model":"mlp","digest":")" + to_hex(c.digest) +
                             R"(","tensors":[{"name":"fc.bias","shape":[2]},{"name":"fc.weight","shape":[2,3]}])" +
                             more_fields + "}";
    at::Tensor values = c.flat.contiguous();
    write_file(path_, hand_made_file(json, std::string(static_cast<const char*>(values.data_ptr()), values.nbytes())));
    return read_checkpoint(path_);
  }

  fs::path dir_;
  fs::path path_;
};

TEST_F(CheckpointTest, WriteThenReadRoundTrips) {
  const Checkpoint written = small_checkpoint();
  ASSERT_TRUE(write_checkpoint(path_, written).ok());
  Result<Checkpoint> r = read_checkpoint(path_);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->round, 4u);
  EXPECT_EQ(r->model_name, "mlp");
  EXPECT_EQ(r->layout, small_layout());
  EXPECT_EQ(r->flat.scalar_type(), at::kFloat);
  EXPECT_EQ(values_of(r->flat), values_of(written.flat));
  EXPECT_EQ(r->digest, written.digest);
}

TEST_F(CheckpointTest, AggregatorStateRoundTripsAndIsVerified) {
  Checkpoint written = small_checkpoint();
  written.previous_aggregate = at::arange(8, at::kFloat) * 0.25;
  ASSERT_TRUE(write_checkpoint(path_, written).ok());
  Result<Checkpoint> r = read_checkpoint(path_);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_TRUE(r->previous_aggregate.defined());
  EXPECT_EQ(values_of(r->previous_aggregate), values_of(written.previous_aggregate));
  EXPECT_EQ(values_of(r->flat), values_of(written.flat));

  std::string bytes = read_file(path_);
  bytes[bytes.size() - 1] ^= 0x01;  // a bit of the stored aggregate
  write_file(path_, bytes);
  Result<Checkpoint> tampered = read_checkpoint(path_);
  EXPECT_EQ(tampered.status().code(), Status::Code::kCorruption);
  EXPECT_NE(tampered.status().message().find("previous aggregate"), std::string::npos);

  ASSERT_TRUE(write_checkpoint(path_, small_checkpoint()).ok());
  Result<Checkpoint> without = read_checkpoint(path_);
  ASSERT_TRUE(without.ok());
  EXPECT_FALSE(without->previous_aggregate.defined());
}

// The server optimizer's buffers follow the aggregate, each with its digest.
TEST_F(CheckpointTest, ServerOptimizerStateRoundTripsAndIsVerified) {
  Checkpoint written = small_checkpoint();
  written.previous_aggregate = at::arange(8, at::kFloat) * 0.25;
  written.server_optimizer = "adam";
  written.server_state = {7, {{"m", at::arange(8, at::kFloat) * -0.5}, {"v", at::arange(8, at::kFloat) + 1}}};
  ASSERT_TRUE(write_checkpoint(path_, written).ok());
  Result<Checkpoint> r = read_checkpoint(path_);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->server_optimizer, "adam");
  EXPECT_EQ(r->server_state.steps, 7u);
  ASSERT_EQ(r->server_state.buffers.size(), 2u);
  EXPECT_EQ(r->server_state.buffers[0].first, "m");
  EXPECT_EQ(values_of(r->server_state.buffers[0].second), values_of(written.server_state.buffers[0].second));
  EXPECT_EQ(values_of(r->server_state.buffers[1].second), values_of(written.server_state.buffers[1].second));
  EXPECT_EQ(values_of(r->previous_aggregate), values_of(written.previous_aggregate));

  std::string bytes = read_file(path_);
  bytes[bytes.size() - 1] ^= 0x01;  // a bit of v
  write_file(path_, bytes);
  Result<Checkpoint> tampered = read_checkpoint(path_);
  EXPECT_EQ(tampered.status().code(), Status::Code::kCorruption);
  EXPECT_NE(tampered.status().message().find("server optimizer buffer"), std::string::npos)
      << tampered.status().to_string();
}

// What a restart needs besides the model: the job, the worker indices, the
// round's settlement, its metrics line and the momentum each worker carries.
TEST_F(CheckpointTest, RoundRecordRoundTrips) {
  Checkpoint written = small_checkpoint();
  written.job_name = "fashion";
  written.job_seed = 77;
  PublicKey a{};
  a.fill(1);
  PublicKey b{};
  b.fill(2);
  written.workers = {b, a};
  written.settlement = {{(uint64_t{4} << 32) | 1, Verdict::kPassed}, {(uint64_t{4} << 32) | 0, Verdict::kUnaudited}};
  written.metrics_json = R"({"round":4,"test_accuracy":0.5})";
  Digest momentum{};
  momentum.fill(9);
  written.carried_momentum = {{a, momentum}, {b, fresh_momentum_digest()}};
  ASSERT_TRUE(write_checkpoint(path_, written).ok());
  Result<Checkpoint> r = read_checkpoint(path_);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->job_name, "fashion");
  EXPECT_EQ(r->job_seed, 77u);
  EXPECT_EQ(r->workers, written.workers);
  EXPECT_EQ(r->settlement, written.settlement);
  EXPECT_EQ(r->metrics_json, written.metrics_json);
  EXPECT_EQ(r->test_accuracy, 0.5);
  EXPECT_EQ(r->test_loss, 0.0);
  EXPECT_EQ(r->carried_momentum, written.carried_momentum);
}

// A checkpoint written before the round record existed still reads.
TEST_F(CheckpointTest, HeaderWithoutTheRoundRecordReadsWithItEmpty) {
  Result<Checkpoint> r = read_with_header_fields("");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_TRUE(r->job_name.empty());
  EXPECT_TRUE(r->workers.empty());
  EXPECT_TRUE(r->settlement.empty());
  EXPECT_TRUE(r->metrics_json.empty());
  EXPECT_TRUE(r->carried_momentum.empty());
}

TEST_F(CheckpointTest, ABadCarriedMomentumEntryIsCorruption) {
  Result<Checkpoint> r = read_with_header_fields(R"(,"momentum":[{"worker":"00","digest":"11"}])");
  EXPECT_EQ(r.status().code(), Status::Code::kCorruption);
  EXPECT_NE(r.status().message().find("carried momentum"), std::string::npos) << r.status().to_string();
}

// A resumed coordinator reads these fields: they used to pass the parse and
// abort it (a JSON type error) on resume.
TEST_F(CheckpointTest, MetricsThatAreNotAnObjectWithNumbersAreCorruption) {
  for (const char* fields : {R"(,"metrics":5)", R"(,"metrics":[1,2])", R"(,"metrics":{"test_accuracy":"high"})",
                             R"(,"metrics":{"test_loss":[]})"}) {
    Result<Checkpoint> r = read_with_header_fields(fields);
    EXPECT_EQ(r.status().code(), Status::Code::kCorruption) << fields;
    EXPECT_NE(r.status().message().find("metrics"), std::string::npos) << r.status().to_string();
  }
}

// data.eval_every: the round's line says null for what it did not evaluate.
TEST_F(CheckpointTest, NullAccuracyAndLossReadAsARoundNotEvaluated) {
  Result<Checkpoint> r = read_with_header_fields(R"(,"metrics":{"test_accuracy":null,"test_loss":null})");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_TRUE(std::isnan(r->test_accuracy));
  EXPECT_TRUE(std::isnan(r->test_loss));
}

TEST_F(CheckpointTest, BadSettlementVerdictIsCorruption) {
  Result<Checkpoint> r = read_with_header_fields(R"(,"settlement":[{"task":1,"verdict":"paid-twice"}])");
  EXPECT_EQ(r.status().code(), Status::Code::kCorruption);
  EXPECT_NE(r.status().message().find("settlement verdict"), std::string::npos) << r.status().to_string();
}

TEST_F(CheckpointTest, FileFollowsTheDocumentedFormat) {
  ASSERT_TRUE(write_checkpoint(path_, small_checkpoint()).ok());
  const std::string bytes = read_file(path_);
  ASSERT_GE(bytes.size(), 16u);
  EXPECT_EQ(bytes.substr(0, 8), "COHORTCK");
  EXPECT_EQ(bytes.substr(8, 4), std::string("\x01\x00\x00\x00", 4));
  const uint32_t header = static_cast<uint8_t>(bytes[12]) | static_cast<uint8_t>(bytes[13]) << 8 |
                          static_cast<uint8_t>(bytes[14]) << 16 |
                          static_cast<uint8_t>(bytes[15]) << 24;
  EXPECT_EQ(bytes.size(), 16 + header + 8 * 4);  // 8 float32 values follow the JSON
  const std::string json = bytes.substr(16, header);
  EXPECT_NE(json.find("\"model\":\"mlp\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"round\":4"), std::string::npos) << json;
  float first = 0;
  std::memcpy(&first, bytes.data() + 16 + header, 4);
  EXPECT_EQ(first, 0.5f);
}

TEST_F(CheckpointTest, AtomicWriteLeavesNoTemporaryFile) {
  ASSERT_TRUE(write_checkpoint(path_, small_checkpoint(1)).ok());
  ASSERT_TRUE(write_checkpoint(path_, small_checkpoint(2)).ok());  // replaces the first
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir_)) names.push_back(entry.path().filename().string());
  EXPECT_EQ(names, std::vector<std::string>{"model.ck"});
  Result<Checkpoint> r = read_checkpoint(path_);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->round, 2u);
}

TEST_F(CheckpointTest, WriteIntoMissingDirectoryIsIoError) {
  Status s = write_checkpoint(dir_ / "no-such-dir" / "model.ck", small_checkpoint());
  EXPECT_EQ(s.code(), Status::Code::kIoError);
}

TEST_F(CheckpointTest, MissingFileIsNotFound) {
  Result<Checkpoint> r = read_checkpoint(dir_ / "absent.ck");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kNotFound);
}

TEST_F(CheckpointTest, BadMagicIsCorruption) {
  Status s = read_after_edit([](std::string& b) { b[0] = 'X'; });
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  EXPECT_NE(s.message().find("magic"), std::string::npos) << s.message();
}

TEST_F(CheckpointTest, WrongVersionIsCorruption) {
  Status s = read_after_edit([](std::string& b) { b[8] = 2; });
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  EXPECT_NE(s.message().find("version 2"), std::string::npos) << s.message();
}

TEST_F(CheckpointTest, TruncatedFilesAreCorruption) {
  EXPECT_EQ(read_after_edit([](std::string& b) { b.resize(b.size() - 4); }).code(),
            Status::Code::kCorruption);  // one value short
  EXPECT_EQ(read_after_edit([](std::string& b) { b.resize(20); }).code(),
            Status::Code::kCorruption);  // inside the header
  EXPECT_EQ(read_after_edit([](std::string& b) { b.resize(10); }).code(),
            Status::Code::kCorruption);  // inside the prefix
  EXPECT_EQ(read_after_edit([](std::string& b) { b.clear(); }).code(),
            Status::Code::kCorruption);
}

TEST_F(CheckpointTest, TrailingBytesAreCorruption) {
  EXPECT_EQ(read_after_edit([](std::string& b) { b.append(4, '\0'); }).code(),
            Status::Code::kCorruption);
}

TEST_F(CheckpointTest, TamperedValueFailsTheDigest) {
  Status s = read_after_edit([](std::string& b) { b[b.size() - 2] ^= 0x01; });
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  EXPECT_NE(s.message().find("digest"), std::string::npos) << s.message();
}

TEST_F(CheckpointTest, MalformedHeaderJsonIsCorruption) {
  const std::string data(8 * 4, '\0');
  write_file(path_, hand_made_file("{\"round\": 1, \"model\": ", data));
  EXPECT_EQ(read_checkpoint(path_).status().code(), Status::Code::kCorruption);
  write_file(path_, hand_made_file("{\"round\": 1, \"model\": \"mlp\"}", data));  // no tensors
  EXPECT_EQ(read_checkpoint(path_).status().code(), Status::Code::kCorruption);
}

TEST_F(CheckpointTest, UnsortedLayoutIsCorruption) {
  const std::string json =
      R"({"round":1,"model":"mlp","digest":"00","tensors":[)"
      R"({"name":"fc.weight","shape":[2,3]},{"name":"fc.bias","shape":[2]}]})";
  write_file(path_, hand_made_file(json, std::string(8 * 4, '\0')));
  EXPECT_EQ(read_checkpoint(path_).status().code(), Status::Code::kCorruption);
}

TEST_F(CheckpointTest, LayoutWhoseSizeOverflowsIsCorruptionNotACrash) {
  // 2^32 * 2^32 elements wraps to 0 in 64 bits, matching an empty data
  // section, and the digest is the true one for that layout and no values.
  const int64_t big = int64_t{1} << 32;
  const Layout huge{{TensorSpec{"w", DType::kFloat32, {big, big}}}};
  const std::string json =
      R"({"round":1,"model":"mlp","digest":")" + to_hex(digest_of(huge, at::zeros({0}))) +
      R"(","tensors":[{"name":"w","shape":[4294967296,4294967296]}]})";
  write_file(path_, hand_made_file(json, ""));
  EXPECT_EQ(read_checkpoint(path_).status().code(), Status::Code::kCorruption);
}

}  // namespace
}  // namespace cohort
