// The one `ppreid` binary. Every command's flags are wired in this folder (commands.h), one file
// per command family; main only owns the global flags and the mapping of failures to exit codes
// (1 = error, 2 = usage error).
#include <CLI/CLI.hpp>

#include <iostream>
#include <utility>

#include "apps/ppreid/commands.h"
#include "core/util/error.h"
#include "core/util/log.h"

int main(int argc, char** argv) {
  CLI::App app{"ppreid: privacy-preserving, federated person re-identification", "ppreid"};
  app.require_subcommand(1);
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  app.parse_complete_callback([&] { ppreid::util::init_logging(log_level); });

  ppreid::app::register_version_command(app);
  ppreid::data::register_data_commands(app);
  ppreid::deid::register_deid_commands(app);
  ppreid::deid::pis::register_pis_train_command(*ppreid::deid::pis::register_pis_commands(app));
  ppreid::reid::register_reid_commands(app);
  ppreid::privacy::register_privacy_commands(app);
  ppreid::attacks::register_attack_commands(app);
  ppreid::proto::register_protocol_commands(app);
  ppreid::agg::register_aggregator_commands(app);
  ppreid::client::register_site_command(app);
  ppreid::sim::register_simulate_command(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // CLI11 reports "A subcommand is required" for a misspelt command; name the word instead.
    for (int i = 1; i < argc; ++i) {
      std::string arg = argv[i];
      if (arg == "--log-level") ++i;
      if (arg.empty() || arg[0] == '-') continue;
      bool known = false;
      for (const CLI::App* sub : std::as_const(app).get_subcommands([](const CLI::App*) { return true; })) known |= sub->get_name() == arg;
      if (!known) {
        std::cerr << "error: unknown command '" << arg << "'; run '" << argv[0]
                  << " --help' for the list of commands\n";
        return 2;
      }
      break;
    }
    std::cerr << "error: " << e.what() << "\n"
              << "run '" << argv[0] << " --help' (or '<command> --help') for usage\n";
    return 2;
  } catch (const ppreid::UsageError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  } catch (const ppreid::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    // Library exceptions (c10::Error, cv::Exception, filesystem_error) still deserve one line.
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
