#include "cohort/endpoint.h"

#include <algorithm>
#include <charconv>
#include <string>

namespace cohort {
namespace {

constexpr int kMaxPort = 65535;

Status bad(std::string_view endpoint, std::string_view problem) {
  return Status::invalid_argument("'" + std::string(endpoint) + "' " + std::string(problem) + ": expected " +
                                  std::string(kEndpointForms));
}

bool is_host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_';
}

// A DNS name or IPv4 address, an IPv6 address in brackets, or * (bind only).
bool valid_host(std::string_view host, EndpointUse use) {
  if (host == "*") return use == EndpointUse::kBind;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    const std::string_view inside = host.substr(1, host.size() - 2);
    return !inside.empty() && std::ranges::all_of(inside, [](char c) {
      return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.';
    });
  }
  return !host.empty() && std::ranges::all_of(host, is_host_char);
}

Status check_port(std::string_view endpoint, std::string_view port, EndpointUse use) {
  if (port == "*" && use == EndpointUse::kBind) return Status();
  int value = 0;
  const auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), value);
  const bool digits = !port.empty() && end == port.data() + port.size() && error == std::errc();
  if (!digits || port.size() > 5 || value < 1 || value > kMaxPort) {
    return bad(endpoint, "has port '" + std::string(port) + "', not one in 1-65535" +
                             (use == EndpointUse::kBind ? " (or * for any free port)" : ""));
  }
  return Status();
}

Status check_tcp(std::string_view endpoint, std::string_view address, EndpointUse use) {
  const size_t colon = address.rfind(':');
  const bool bracketed = !address.empty() && address.front() == '[';
  if (colon == std::string_view::npos || (bracketed && address.find(']') > colon)) {
    return bad(endpoint, "has no port");
  }
  const std::string_view host = address.substr(0, colon);
  if (!valid_host(host, use)) {
    return bad(endpoint, host.empty() ? "has no host" : "has host '" + std::string(host) + "', not a host name or address");
  }
  return check_port(endpoint, address.substr(colon + 1), use);
}

}  // namespace

Status check_endpoint(std::string_view endpoint, EndpointUse use) {
  const size_t separator = endpoint.find("://");
  if (separator == std::string_view::npos) return bad(endpoint, "has no transport (tcp://, ipc:// or inproc://)");
  const std::string_view scheme = endpoint.substr(0, separator);
  const std::string_view address = endpoint.substr(separator + 3);
  if (scheme == "tcp") return check_tcp(endpoint, address, use);
  if (scheme == "ipc" || scheme == "inproc") {
    return address.empty() ? bad(endpoint, "names no " + std::string(scheme == "ipc" ? "path" : "name")) : Status();
  }
  return bad(endpoint, "uses transport '" + std::string(scheme) + "://', which Cohort does not speak");
}

}  // namespace cohort
