#include "apps/ppreid/commands.h"

#include <nlohmann/json.hpp>

#include <iostream>
#include <memory>
#include <string>

#include "protocols/keys.h"

namespace ppreid::proto {
namespace {

struct KeygenArgs {
  std::string out;
  bool json = false;
};

void run_keygen(const KeygenArgs& a) {
  const PublicKey pub = write_keypair(a.out);
  const KeyFiles files = key_files(a.out);
  if (a.json) {
    std::cout << nlohmann::json{{"secret_key_file", files.secret_file.string()},
                                {"public_key_file", files.public_file.string()},
                                {"public_key", pub.z85()}}
                     .dump(2)
              << "\n";
    return;
  }
  std::cout << "wrote " << files.secret_file.string() << " (secret key, mode 0600: never copy it "
            << "off this machine)\n"
            << "wrote " << files.public_file.string() << " (public key " << pub.z85() << ")\n"
            << "a site: give " << files.public_file.filename().string()
            << " to the aggregator's operator, who puts it in the allow-list directory as "
               "SITE_ID.pub\n"
            << "the aggregator: give " << files.public_file.filename().string()
            << " to every site, which pins it as the server key\n";
}

}  // namespace

void register_protocol_commands(CLI::App& app) {
  auto k = std::make_shared<KeygenArgs>();
  CLI::App* keygen = app.add_subcommand(
      "keygen", "Create a CURVE key pair for federation: PREFIX.key (secret) and PREFIX.pub");
  keygen
      ->add_option("--out", k->out,
                   "Prefix of the two files (existing files are never replaced)")
      ->required();
  keygen->add_flag("--json", k->json, "Print the file names and the public key as JSON");
  keygen->callback([k] { run_keygen(*k); });
}

}  // namespace ppreid::proto
