#include "core/util/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "core/util/error.h"

namespace ppreid::util {

void init_logging(const std::string& level) {
  auto parsed = spdlog::level::from_str(level);
  // from_str maps unknown words to "off"; only accept that when it was asked for.
  if (parsed == spdlog::level::off && level != "off")
    throw UsageError("--log-level: '" + level +
                     "' is not a level (trace, debug, info, warn, error, off)");
  auto logger = spdlog::stderr_color_mt("ppreid");
  logger->set_pattern("%^[%H:%M:%S.%e %l]%$ %v");
  logger->set_level(parsed);
  spdlog::set_default_logger(logger);
}

}  // namespace ppreid::util
