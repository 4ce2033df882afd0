#include "core/reid/trainer.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>

#include "core/data/loader.h"
#include "core/reid/batch_norm.h"
#include "core/reid/checkpoint.h"
#include "core/reid/features.h"
#include "core/reid/losses.h"
#include "core/reid/model.h"
#include "core/reid/train_step.h"
#include "core/util/atomic_file.h"
#include "core/util/error.h"
#include "core/util/progress.h"
#include "core/tensor/torch_threads.h"

namespace ppreid::reid {
namespace fs = std::filesystem;
namespace {

void set_lr(torch::optim::Adam& optimizer, double lr) {
  for (auto& group : optimizer.param_groups())
    static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
}

std::string fixed3(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  return buf;
}

}  // namespace

nlohmann::json TrainSummary::to_json() const {
  return {{"epochs_run", epochs_run},   {"last_epoch", last_epoch},
          {"seconds", seconds},         {"images_per_second", images_per_second},
          {"world_size", world_size},   {"final_loss", final_loss},
          {"metrics", metrics}};
}

TrainSummary train_model(const TrainConfig& config, const data::Dataset& dataset,
                         const TrainOptions& options) {
  const auto& profile = config.profile;
  dist::Communicator* comm =
      options.comm && options.comm->world_size() > 1 ? options.comm : nullptr;
  const int world = comm ? comm->world_size() : 1;
  const bool leader = !comm || comm->rank() == 0;  // writes the run directory
  if (dataset.num_train_ids < profile.loader.p)
    throw Error("the train split of '" + dataset.root.string() + "' has " +
                std::to_string(dataset.num_train_ids) + " identities but loader.p is " +
                std::to_string(profile.loader.p) + "; lower loader.p in " + profile.source +
                " or use a dataset with more identities");
  tensor::configure_torch_threads(profile.runtime.threads);
  torch::manual_seed(profile.runtime.seed);
  if (leader) fs::create_directories(options.out);
  const fs::path ckpt_dir = options.out / "checkpoint";

  ReidModel model(ModelOptions{config.backbone, dataset.num_train_ids, true});
  CenterLoss center(dataset.num_train_ids, model->feature_dim());
  torch::optim::Adam optimizer(
      trainable_parameters(model), torch::optim::AdamOptions(config.optimizer.lr).weight_decay(config.optimizer.weight_decay));
  torch::optim::SGD center_optimizer(center->parameters(),
                                     torch::optim::SGDOptions(config.optimizer.center_lr));

  CheckpointInfo info;
  info.backbone = config.backbone;
  info.num_classes = dataset.num_train_ids;
  info.feature_dim = model->feature_dim();
  info.height = profile.transform.height;
  info.width = profile.transform.width;
  info.epochs = config.schedule.epochs;
  info.seed = profile.runtime.seed;
  info.config = profile.source;

  int start_epoch = 0;
  if (options.init && leader) {
    CheckpointInfo init = read_checkpoint_info(*options.init);
    if (init.backbone.arch != config.backbone.arch)
      throw Error("--init: '" + options.init->string() + "' holds a " + init.backbone.arch +
                  " backbone but the config trains a " + config.backbone.arch);
    load_shared(model, *options.init / "shared.pt");
    spdlog::info("backbone initialized from {}", options.init->string());
  }
  if (options.resume) {
    // Rank 0 reads the checkpoint; the others get its weights (broadcast below), its optimizer
    // state and its position as bytes, so only rank 0 needs the run directory.
    std::string training_bytes, saved_json;
    if (leader) {
      CheckpointInfo saved = read_checkpoint_info(ckpt_dir);
      if (saved.backbone.arch != config.backbone.arch || saved.num_classes != info.num_classes)
        throw Error("--resume: the checkpoint in '" + ckpt_dir.string() + "' is a " +
                    saved.backbone.arch + " with " + std::to_string(saved.num_classes) +
                    " classes, but the config asks for a " + config.backbone.arch + " with " +
                    std::to_string(info.num_classes) + "; use the same config and data");
      if (!fs::exists(ckpt_dir / "training.pt"))
        throw Error("--resume: '" + ckpt_dir.string() +
                    "' has no training.pt (optimizer state); it is an exported model, not a run");
      load_shared(model, ckpt_dir / "shared.pt");
      load_head(model, ckpt_dir / "head.pt");
      training_bytes = util::read_file(ckpt_dir / "training.pt");
      saved_json = saved.to_json().dump();
    }
    if (comm) {
      training_bytes = comm->broadcast_bytes(training_bytes, 0, "resume: optimizer state");
      saved_json = comm->broadcast_bytes(saved_json, 0, "resume: checkpoint info");
    }
    CheckpointInfo saved =
        CheckpointInfo::from_json(nlohmann::json::parse(saved_json), ckpt_dir.string());
    torch::serialize::InputArchive archive;
    archive.load_from(training_bytes.data(), training_bytes.size());
    torch::serialize::InputArchive opt_archive, center_archive, center_opt_archive;
    archive.read("optimizer", opt_archive);
    archive.read("center", center_archive);
    archive.read("center_optimizer", center_opt_archive);
    optimizer.load(opt_archive);
    center->load(center_archive);
    center_optimizer.load(center_opt_archive);
    start_epoch = saved.epoch + 1;
    info.metrics = saved.metrics;
    spdlog::info("resuming after epoch {} from {}", saved.epoch + 1, ckpt_dir.string());
  }
  data::LoaderOptions loader_options = profile.loader;
  std::unique_ptr<dist::GradientSync> sync;
  if (comm) {
    broadcast_module_state(*model, *comm);
    broadcast_module_state(*center, *comm);
    sync = prepare_data_parallel(model, center, config.distributed, *comm, loader_options);
    spdlog::info("rank {} of {}: {} gradient buckets of <= {} MB, batch norm {}", comm->rank(),
                 world, sync->num_buckets(), config.distributed.bucket_mb,
                 config.distributed.batch_norm);
  }

  data::TrainLoader loader(dataset, profile.transform, loader_options);
  StepContext step{model, center, optimizer, center_optimizer, config.loss, {}, comm, sync.get()};
  TrainSummary summary;
  summary.world_size = world;
  std::string metrics_lines = leader && options.resume && fs::exists(options.out / "metrics.jsonl")
                                  ? util::read_file(options.out / "metrics.jsonl")
                                  : std::string();
  auto started = std::chrono::steady_clock::now();
  std::int64_t images_seen = 0;
  double train_seconds = 0;  // excludes evaluation and checkpointing

  for (int epoch = start_epoch; epoch < config.schedule.epochs; ++epoch) {
    double lr = config.schedule.lr_at(config.optimizer.lr, epoch);
    set_lr(optimizer, lr);
    model->train();
    loader.start_epoch(epoch);
    util::Progress progress(static_cast<std::int64_t>(loader.batches_per_epoch()) *
                                profile.loader.p * profile.loader.k,
                            "epoch " + std::to_string(epoch + 1) + "/" +
                                std::to_string(config.schedule.epochs));
    LossMeans means;
    while (auto batch = loader.next()) {
      StepLosses parts = train_step(step, *batch, [&](double total) {
        return "the training loss became " + std::to_string(total) + " at epoch " +
               std::to_string(epoch + 1) + " step " + std::to_string(means.steps() + 1) +
               "; lower optimizer.lr in " + profile.source + " (the last checkpoint is kept)";
      });
      means.add(parts);
      images_seen += batch->size() * world;
      progress.set_suffix("loss " + fixed3(parts.total) + " (id " + fixed3(parts.id) + " tri " +
                          fixed3(parts.triplet) + " ctl " + fixed3(parts.centroid) + ")");
      progress.tick(batch->size());
    }
    progress.finish();
    train_seconds += progress.seconds();
    if (means.steps() == 0)
      throw Error("epoch " + std::to_string(epoch + 1) + " produced no batches");
    const StepLosses mean = means.mean();

    nlohmann::json line = {{"epoch", epoch + 1},
                           {"lr", lr},
                           {"loss", mean.total},
                           {"loss_id", mean.id},
                           {"loss_triplet", mean.triplet},
                           {"loss_center", mean.center},
                           {"loss_centroid", mean.centroid},
                           {"images_per_second", progress.rate() * world}};
    // Local BatchNorm: one set of running statistics for evaluation and the checkpoint.
    if (comm && config.distributed.batch_norm == "local")
      average_batch_norm_statistics(*model, *comm);
    bool last = epoch + 1 == config.schedule.epochs;
    bool eval_now = options.evaluate &&
                    (last || (config.eval.every > 0 && (epoch + 1) % config.eval.every == 0));
    if (eval_now) {
      data::EvalLoaderOptions eval_opts;
      eval_opts.batch_size = config.eval.batch_size;
      eval_opts.workers = profile.loader.workers;
      info.metrics = evaluate_model(model, dataset, profile.transform, config.eval.metric,
                                    config.eval.centroids, eval_opts, comm,
                                    config.eval.centroid_protocol);
      line["eval"] = info.metrics;
      summary.metrics = info.metrics;
      spdlog::info("epoch {}: mAP {:.4f} rank1 {:.4f}{}", epoch + 1,
                   info.metrics["instance"]["mAP"].get<double>(),
                   info.metrics["instance"]["rank1"].get<double>(),
                   info.metrics.contains("centroid")
                       ? fmt::format(" | centroid mAP {:.4f} rank1 {:.4f}",
                                     info.metrics["centroid"]["mAP"].get<double>(),
                                     info.metrics["centroid"]["rank1"].get<double>())
                       : std::string());
    }
    spdlog::info("epoch {}/{}: loss {:.4f}, lr {:.2e}, {:.0f} images/s", epoch + 1,
                 config.schedule.epochs, mean.total, lr, progress.rate() * world);

    info.epoch = epoch;
    summary.last_epoch = epoch;
    summary.final_loss = mean.total;
    ++summary.epochs_run;
    if (!leader) continue;
    save_checkpoint(ckpt_dir, model, info, [&](const fs::path& file) {
      torch::serialize::OutputArchive archive, opt_archive, center_archive, center_opt_archive;
      optimizer.save(opt_archive);
      center->save(center_archive);
      center_optimizer.save(center_opt_archive);
      archive.write("optimizer", opt_archive);
      archive.write("center", center_archive);
      archive.write("center_optimizer", center_opt_archive);
      archive.save_to(file.string());
    });
    metrics_lines += line.dump() + "\n";
    util::write_file_atomic(options.out / "metrics.jsonl", metrics_lines);
  }

  summary.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  summary.images_per_second = train_seconds > 0 ? images_seen / train_seconds : 0.0;
  if (summary.metrics.is_null()) summary.metrics = info.metrics;
  if (leader)
    util::write_file_atomic(options.out / "summary.json", summary.to_json().dump(2) + "\n");
  return summary;
}

}  // namespace ppreid::reid
