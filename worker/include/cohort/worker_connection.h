// How a real worker reaches its coordinator: a ZeroMQ DEALER socket,
// with CurveZMQ under a transport key derived from the worker's identity
// (cohort/transport.h) unless options.curve is off. run_worker (worker.h)
// takes the connector this returns and calls it once its local data is
// loaded; tests and `cohort simulate` give it an InProcessChannel's peer
// instead (channel.h).
#pragma once

#include <zmq.hpp>

#include "cohort/crypto.h"
#include "cohort/log.h"
#include "cohort/status.h"
#include "cohort/worker.h"

namespace cohort {

// Checks options.coordinator and, with CURVE, that options.coordinator_key
// is set, then returns the connector. The connection it makes: with CURVE
// it waits for a handshake (the coordinator's key authenticates the
// server) and fails with FailedPrecondition when handshakes keep failing
// (a wrong coordinator key, or this key is not on the allow-list) or
// DeadlineExceeded when none completed within options.idle_timeout;
// reconnected() reports every connection made after the first one.
// Errors (now): a malformed address (InvalidArgument, naming the expected
// forms); CURVE without a coordinator key (InvalidArgument). `context`,
// `identity` and `log` are borrowed and must outlive the connection.
Result<CoordinatorConnector> zeromq_connector(zmq::context_t& context, const WorkerOptions& options,
                                             const Identity& identity, Logger& log);

}  // namespace cohort
