// ZeroMQ endpoints as Cohort accepts them, checked before ZeroMQ sees them:
// ZeroMQ throws on a malformed endpoint (and a worker used to abort on
// `--coordinator 127.0.0.1:5555`), and quietly wraps a port above 65535.
//
//   tcp://HOST:PORT   HOST a name, an IPv4 address or [an IPv6 address]
//                     (or * to bind every interface); PORT 1-65535, or *
//                     (any free port) when binding
//   ipc://PATH        a Unix socket path
//   inproc://NAME     a name inside one process
#pragma once

#include <string_view>

#include "cohort/status.h"

namespace cohort {

enum class EndpointUse { kBind, kConnect };

// The accepted forms, for messages: "tcp://HOST:PORT, ipc://PATH or inproc://NAME".
inline constexpr std::string_view kEndpointForms = "tcp://HOST:PORT, ipc://PATH or inproc://NAME";

// OK when `endpoint` has one of the forms above for `use`; otherwise
// InvalidArgument whose message says what is wrong and gives the expected
// form, e.g. "'tcp://localhost' has no port: expected tcp://HOST:PORT, ...".
// Pure: resolves no name and opens nothing.
Status check_endpoint(std::string_view endpoint, EndpointUse use);

}  // namespace cohort
