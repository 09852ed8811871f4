// `cohort keygen --out NAME`: make an Ed25519 identity (NAME.key, NAME.pub).
#include <iostream>

#include "cohort/crypto.h"
#include "commands.h"
#include "options.h"

namespace cohort::cli {

int keygen_command(const std::vector<std::string>& args) {
  po::options_description options("options");
  options.add_options()
      ("help,h", "show this help")
      ("out,o", po::value<std::string>()->required(),
       "path of the secret key file; the public key goes next to it with the extension .pub");
  int exit_code = kExitOk;
  auto vm = parse_args("keygen",
                       "Writes a new Ed25519 key pair: the secret file (mode 0600) signs tasks, "
                       "updates and ledger entries; the .pub file (hex) is the account others see.",
                       options, args, exit_code);
  if (!vm) return exit_code;
  if (Status s = init_crypto(); !s.ok()) {
    std::cerr << "cohort keygen: " << s.to_string() << "\n";
    return kExitFailure;
  }
  const std::filesystem::path secret_path = (*vm)["out"].as<std::string>();
  Identity identity = Identity::generate();
  if (Status s = write_key_pair(identity, secret_path); !s.ok()) {
    std::cerr << "cohort keygen: " << s.message() << "\n";
    return kExitUsage;
  }
  std::cout << "secret key: " << secret_path.string() << " (keep it private)\n"
            << "public key: " << public_key_path(secret_path).string() << "\n"
            << to_hex(identity.public_key()) << "\n";
  return kExitOk;
}

}  // namespace cohort::cli
