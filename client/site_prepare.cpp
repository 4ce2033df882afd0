#include "client/site.h"

#include <spdlog/spdlog.h>

#include <mutex>
#include <set>

#include "core/data/synth/generator.h"
#include "core/deid/deid_runner.h"
#include "core/profile/profile.h"
#include "core/reid/checkpoint.h"
#include "core/tensor/torch_threads.h"
#include "core/util/atomic_dir.h"
#include "core/util/atomic_file.h"
#include "core/util/error.h"

// Site::prepare() and the site state between rounds (see site.cpp for how the runtime is split).

namespace ppreid::client {
namespace fs = std::filesystem;

namespace {

constexpr const char* kStateMarker = "site_state.json";  // written last into data.state
// The quality of the site's de-identification against its raw images (SSIM, PSNR). Derived from
// raw pixels, so it lives in the private state directory, never in the store the site trains
// from, and nothing sends it anywhere.
constexpr const char* kDeidQuality = "deid_quality.json";
constexpr const char* kDeidManifest = "deid.json";       // written last by deidentify_dataset
constexpr const char* kDeidPartial = "deid.partial.json";

std::uint64_t distinct_cameras(const data::Dataset& ds) {
  std::set<int> cams;
  for (const auto* split : {&ds.train, &ds.query, &ds.gallery})
    for (const auto& r : *split) cams.insert(r.camid);
  return cams.size();
}

}  // namespace

PrepareReport Site::prepare() {
  PrepareReport report;
  const SiteConfig& c = config_;

  // 1. The raw dataset. Generated only when absent; synth::generate renames a complete sibling
  //    into place, so an interrupted generation leaves no half dataset behind.
  if (!fs::exists(c.raw) && !follower()) {
    if (!c.synth)
      throw Error("the raw dataset '" + c.raw.string() + "' does not exist; set data.raw in '" +
                  c.file.string() + "' to the site's Market-1501 directory (or data.synth to "
                  "generate a synthetic one)");
    data::synth::SynthOptions o = load_profile(c.synth->profile).synth;
    o.seed = c.synth->seed;
    if (c.synth->ids) o.ids = *c.synth->ids;
    if (c.synth->images_per_id) o.images_per_id = *c.synth->images_per_id;
    o.threads = c.deid_threads;
    data::synth::validate(o);
    spdlog::info("{}generating the synthetic raw dataset into {} (seed {})", log_prefix(),
                 c.raw.string(), o.seed);
    data::synth::generate(o, c.raw);
    report.generated_raw = true;
  }

  // 2. The de-identified store, keyed by the method and its parameters (deid.json).
  std::unique_ptr<deid::Deidentifier> method =
      deid::make_deidentifier(c.deid, deid::ParameterNaming{"deid.", "-"});
  const nlohmann::json identity = {{"method", method->name()},
                                   {"parameters", method->parameters()}};
  auto same_run = [&](const fs::path& file) {
    nlohmann::json saved = nlohmann::json::parse(util::read_file(file));
    return saved.value("method", nlohmann::json()) == identity["method"] &&
           saved.value("parameters", nlohmann::json()) == identity["parameters"];
  };
  auto refuse = [&](const std::string& what) {
    throw Error("the store '" + c.store.string() + "' " + what + ", but '" + c.file.string() +
                "' asks for method " + method->name() + " with " + identity["parameters"].dump() +
                "; choose another data.store, or delete '" + c.store.string() +
                "' to de-identify the raw data again");
  };
  const bool partial = fs::exists(c.store / kDeidPartial);
  const bool complete = fs::exists(c.store / kDeidManifest) && !partial;
  if (complete) {
    if (!same_run(c.store / kDeidManifest))
      refuse("was de-identified with other parameters (its " + std::string(kDeidManifest) +
             " says " + nlohmann::json::parse(util::read_file(c.store / kDeidManifest))
                            .value("method", nlohmann::json("?")).dump() + ")");
    spdlog::info("{}store {} is complete for method {}; not de-identifying again", log_prefix(),
                 c.store.string(), method->name());
  } else if (follower()) {
    throw Error("rank " + std::to_string(comm_->rank()) + ": the de-identified store '" +
                c.store.string() + "' is not complete on this machine; ranks above 0 train on "
                "the store rank 0 prepared: put data.store on a filesystem all ranks share, or "
                "copy rank 0's store there before starting this rank");
  } else {
    if (partial && !same_run(c.store / kDeidPartial))
      refuse("holds an interrupted de-identification with other parameters");
    if (!partial && fs::exists(c.store) && !fs::is_empty(c.store))
      refuse("is not empty and holds no " + std::string(kDeidManifest) +
             " (it is not a store of `ppreid deid`)");
    if (partial) {
      // Resuming must not draw a new plan: rebuild the method as for `ppreid deid --resume`.
      deid::MethodSpec spec = c.deid;
      spec.resume = true;
      method = deid::make_deidentifier(spec, deid::ParameterNaming{"deid.", "-"});
    }
    deid::DeidRunOptions run;
    run.in = c.raw;
    run.out = c.store;
    run.threads = c.deid_threads;
    run.resume = partial;
    run.report = config_.state / kDeidQuality;
    spdlog::info("{}de-identifying {} into {} with {}{}", log_prefix(), c.raw.string(),
                 c.store.string(), method->name(), partial ? " (resuming)" : "");
    deid::DeidReport r = deid::deidentify_dataset(*method, run);
    spdlog::info("{}de-identified {} images in {:.1f} s", log_prefix(), r.images, r.seconds);
    report.deidentified = true;
    report.resumed = partial;
  }

  // 3. The store and the model: a classifier over the store's own train identities.
  // Query/gallery are optional for a site (they only serve Evaluate); without them the loader
  // reads the train split alone.
  data::LoadOptions load = data::present_splits(c.store);
  load.require_train = true;  // a site trains: say so when its store has no train images
  store_ = data::load_dataset(c.store, load);
  if (hooks_.on_train_split) {
    hooks_.on_train_split(store_->train, store_->num_train_ids);
    for (const auto& r : store_->train)
      if (r.label < 0 || r.label >= store_->num_train_ids)
        throw Error("a fault hook gave train image '" + r.path + "' label " +
                    std::to_string(r.label) + ", outside the site's " +
                    std::to_string(store_->num_train_ids) + " classes (0.." +
                    std::to_string(store_->num_train_ids - 1) + ")");
  }
  train_config_ = reid::load_train_config(c.train_config);
  if (c.threads > 0) train_config_.profile.runtime.threads = c.threads;
  {
    std::lock_guard seeded(tensor::torch_generator_mutex());
    torch::manual_seed(train_config_.profile.runtime.seed);
    model_ = reid::ReidModel(
        reid::ModelOptions{train_config_.backbone, store_->num_train_ids, true});
    center_ = reid::CenterLoss(store_->num_train_ids, model_->feature_dim());
  }
  restore_state();
  report.restored_state = restored_state_;

  report.summary.images = store_->train.size();
  report.summary.identities = static_cast<std::uint64_t>(store_->num_train_ids);
  report.summary.cameras = distinct_cameras(*store_);
  report.summary.deid_method = method->name();
  const nlohmann::json params = method->parameters();
  if (method->name() == "dp" && params.contains("epsilon") && params["epsilon"].is_number())
    report.summary.epsilon = params["epsilon"].get<double>();
  report_ = report;
  prepared_ = true;
  return report;
}

// ---- the head and centres between rounds ----------------------------------------------------

void Site::save_state(std::uint64_t round) {
  util::write_directory_atomic(config_.state, [&](const fs::path& tmp) {
    reid::save_head(model_, tmp / "head.pt");
    torch::serialize::OutputArchive archive;
    center_->save(archive);
    archive.save_to((tmp / "center.pt").string());
    // The state directory is replaced as a whole; the quality report stays in it.
    if (fs::exists(config_.state / kDeidQuality))
      fs::copy_file(config_.state / kDeidQuality, tmp / kDeidQuality);
    nlohmann::json info = {{"site_id", config_.site_id},
                           {"round", round},
                           {"num_classes", model_->num_classes()},
                           {"feature_dim", model_->feature_dim()},
                           {"arch", train_config_.backbone.arch}};
    util::write_file_atomic(tmp / kStateMarker, info.dump(2) + "\n");
  });
}

void Site::restore_state() {
  restored_state_ = false;
  const fs::path dir = util::complete_directory(config_.state, kStateMarker);
  if (dir.empty()) return;
  nlohmann::json info = nlohmann::json::parse(util::read_file(dir / kStateMarker));
  if (info.value("num_classes", -1) != model_->num_classes() ||
      info.value("feature_dim", -1) != model_->feature_dim() ||
      info.value("arch", std::string()) != train_config_.backbone.arch)
    throw Error("the saved site state in '" + dir.string() + "' is for a " +
                info.value("arch", std::string("?")) + " with " +
                std::to_string(info.value("num_classes", -1)) + " identities, but this site " +
                "trains a " + train_config_.backbone.arch + " over " +
                std::to_string(model_->num_classes()) + " identities of its store; delete '" +
                config_.state.string() + "' (the head is rebuilt) or point data.state elsewhere");
  reid::load_head(model_, dir / "head.pt");
  torch::serialize::InputArchive archive;
  archive.load_from((dir / "center.pt").string());
  center_->load(archive);
  restored_state_ = true;
  spdlog::info("{}restored its head and centres from {} (round {})", log_prefix(), dir.string(),
               info.value("round", 0));
}

}  // namespace ppreid::client
