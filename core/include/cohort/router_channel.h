// The Channel (channel.h) of a real job: a ZeroMQ ROUTER socket, CurveZMQ
// by default (network.curve), bound to network.listen.
//
// With CURVE the socket is a CURVE server under the given identity's key,
// and a ZapHandler in the same ZeroMQ context admits any client key or only
// those of network.allow_list (transport.h); each Incoming::user_id is then
// the key the sender's connection authenticated with. Sends to a peer that
// is gone fail (ZMQ_ROUTER_MANDATORY); a peer's queue holds at most
// network.max_pending_messages messages (ZeroMQ stops reading from it
// beyond); a message over network.max_message_bytes drops the connection.
#pragma once

#include <memory>

#include <zmq.hpp>

#include "cohort/channel.h"
#include "cohort/config.h"
#include "cohort/crypto.h"
#include "cohort/log.h"
#include "cohort/status.h"

namespace cohort {

// Binds the channel. `context` must outlive it. Errors: IoError when the
// endpoint is in use or invalid, or (with CURVE) a ZAP handler already runs
// in `context`; an unreadable or malformed allow-list.
Result<std::unique_ptr<Channel>> listen_router(zmq::context_t& context, const NetworkSection& network,
                                               const Identity& identity, Logger& log);

}  // namespace cohort
