#include "apps/ppreid/commands.h"

#include <openssl/crypto.h>
#include <torch/version.h>

#include <iostream>
#include <nlohmann/json.hpp>
#include <opencv2/core/version.hpp>

#include "protocols/transport_info.h"

namespace ppreid::app {

void register_version_command(CLI::App& app) {
  auto json = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand("version", "Print versions of ppreid and its libraries");
  cmd->add_flag("--json", *json, "Print JSON");
  cmd->callback([json] {
    nlohmann::json v = {{"ppreid", PPREID_VERSION},
                        {"libtorch", TORCH_VERSION},
                        {"opencv", CV_VERSION},
                        {"zeromq", proto::zmq_version_string()},
                        {"zeromq_curve", proto::zmq_has_curve()},
                        {"openssl", OpenSSL_version(OPENSSL_VERSION)},
                        {"cuda", false}};
    if (*json) {
      std::cout << v.dump(2) << "\n";
      return;
    }
    std::cout << "ppreid " << PPREID_VERSION << "\n"
              << "  LibTorch " << TORCH_VERSION << " (CPU)\n"
              << "  OpenCV   " << CV_VERSION << "\n"
              << "  ZeroMQ   " << proto::zmq_version_string()
              << (proto::zmq_has_curve() ? " (CURVE available)" : " (NO CURVE support)") << "\n"
              << "  OpenSSL  " << OpenSSL_version(OPENSSL_VERSION) << "\n";
  });
}

}  // namespace ppreid::app
