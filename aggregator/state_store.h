#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>

#include "aggregator/model_update.h"
#include "aggregator/site_registry.h"
#include "aggregator/strategy.h"

namespace ppreid::agg {

// Everything the aggregator must keep across a crash.
struct AggregatorState {
  // Rounds completed: `global` is the model round `round` produced (0: the initial model, no
  // round completed). After loading round r the aggregator runs round r + 1.
  std::int64_t round = 0;
  NamedTensors global;
  StrategyState strategy;
  SiteRegistry sites;
  nlohmann::json info = nlohmann::json::object();  // free-form: federation id, model arch, ...
};

// Where a save can be interrupted; each leaves a different set of files behind.
enum class SaveStep {
  kGlobalWritten,        // global.pt in the temporary directory
  kStrategyWritten,      // strategy.pt
  kSitesWritten,         // sites.json
  kManifestWritten,      // manifest.json: the temporary directory is complete
  kPreviousMovedAside,   // the previous checkpoint renamed to .checkpoint.old
  kSwappedIn,            // the new checkpoint in place, .checkpoint.old not yet removed
};
std::string_view to_string(SaveStep step);

// The aggregator's durable state in DIR/checkpoint/:
//   global.pt    the global weights (a state_dict Python's torch.load reads)
//   strategy.pt  the strategy's tensors (FedAdam/FedYogi moments), "m/NAME", "v/NAME"
//   sites.json   the site registry
//   manifest.json (written last) format, round, time, strategy name and meta, every tensor's
//                name/dtype/shape, every file's size and SHA-256, and `info`
// save() fills a sibling temporary directory and swaps it in (util::write_directory_atomic:
// fsync, rename), so a crash (kill -9) at any point leaves the previous or the new checkpoint
// complete and load() returns the last COMPLETE round, never a mix. Other files in DIR
// (metrics.jsonl, logs) are left alone.
class StateStore {
 public:
  explicit StateStore(std::filesystem::path dir);

  // The last complete checkpoint, or nullopt when none was ever completed (fresh start).
  // Everything is validated: checksums, the tensors against the manifest, the strategy meta and
  // the registry; ppreid::Error names the file and what is wrong.
  std::optional<AggregatorState> load() const;
  // The round of the last complete checkpoint (reads the manifest only).
  std::optional<std::int64_t> saved_round() const;

  // Checkpoints `state`. Refuses (ppreid::Error) a round below the saved one: rounds never go
  // back, so none is counted twice. Saving the same round again replaces it (e.g. a shutdown
  // checkpoint with an updated registry).
  void save(const AggregatorState& state);

  // For crash tests: called after every SaveStep of save(); throwing from it leaves the files
  // exactly as a crash at that point would.
  void set_step_hook(std::function<void(SaveStep)> hook) { hook_ = std::move(hook); }

  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path checkpoint_dir() const { return dir_ / "checkpoint"; }

 private:
  std::filesystem::path dir_;
  std::function<void(SaveStep)> hook_;
};

}  // namespace ppreid::agg
