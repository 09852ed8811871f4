#include "cohort/endpoint.h"

#include <gtest/gtest.h>

namespace cohort {
namespace {

TEST(EndpointTest, AcceptsTheFormsWorkersAndCoordinatorsUse) {
  for (const char* endpoint : {"tcp://127.0.0.1:5555", "tcp://coordinator.example.org:1", "tcp://[::1]:65535",
                               "tcp://localhost:6000", "ipc:///tmp/cohort.sock", "inproc://job"}) {
    EXPECT_TRUE(check_endpoint(endpoint, EndpointUse::kConnect).ok()) << endpoint;
    EXPECT_TRUE(check_endpoint(endpoint, EndpointUse::kBind).ok()) << endpoint;
  }
}

TEST(EndpointTest, WildcardsOnlyWhenBinding) {
  for (const char* endpoint : {"tcp://127.0.0.1:*", "tcp://*:5555", "tcp://*:*"}) {
    EXPECT_TRUE(check_endpoint(endpoint, EndpointUse::kBind).ok()) << endpoint;
    EXPECT_FALSE(check_endpoint(endpoint, EndpointUse::kConnect).ok()) << endpoint;
  }
}

// The worker aborted on each of these (zmq::error_t escaped).
TEST(EndpointTest, MalformedEndpointsAreNamedWithTheExpectedForm) {
  struct Case {
    const char* endpoint;
    const char* problem;
  };
  for (const Case& c : {Case{"127.0.0.1:57003", "has no transport"}, Case{"tcp://localhost", "has no port"},
                        Case{"http://x", "transport 'http://'"}, Case{"tcp://:5555", "has no host"},
                        Case{"tcp://host:port", "port 'port'"}, Case{"tcp://a b:5555", "host 'a b'"},
                        Case{"ipc://", "names no path"}, Case{"inproc://", "names no name"},
                        Case{"tcp://[::1]", "has no port"}, Case{"", "has no transport"}}) {
    const Status status = check_endpoint(c.endpoint, EndpointUse::kConnect);
    EXPECT_EQ(status.code(), Status::Code::kInvalidArgument) << c.endpoint;
    EXPECT_NE(status.message().find(c.problem), std::string::npos) << status.message();
    EXPECT_NE(status.message().find("expected tcp://HOST:PORT"), std::string::npos) << status.message();
    EXPECT_NE(status.message().find(std::string("'") + c.endpoint + "'"), std::string::npos) << status.message();
  }
}

// ZeroMQ took port 99999 modulo 65536 and listened on 34463 without a word.
TEST(EndpointTest, PortsOutsideOneTo65535AreRefused) {
  for (const char* endpoint : {"tcp://127.0.0.1:99999", "tcp://127.0.0.1:65536", "tcp://127.0.0.1:0",
                               "tcp://127.0.0.1:-1", "tcp://127.0.0.1:123456"}) {
    for (EndpointUse use : {EndpointUse::kBind, EndpointUse::kConnect}) {
      const Status status = check_endpoint(endpoint, use);
      EXPECT_NE(status.message().find("not one in 1-65535"), std::string::npos) << endpoint << ": " << status.message();
    }
  }
}

}  // namespace
}  // namespace cohort
