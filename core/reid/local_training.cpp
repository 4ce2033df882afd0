#include "core/reid/local_training.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <limits>

#include "core/data/loader.h"
#include "core/reid/batch_norm.h"
#include "core/util/error.h"
#include "core/tensor/torch_threads.h"

namespace ppreid::reid {

LocalRoundResult train_local_round(ReidModel& model, CenterLoss& center,
                                   const data::Dataset& store, const TrainConfig& config,
                                   const NamedTensors& global, const LocalRoundSettings& settings,
                                   const LocalStepCallback& before_step,
                                   dist::Communicator* comm) {
  if (comm && comm->world_size() < 2) comm = nullptr;
  const int world = comm ? comm->world_size() : 1;
  const std::string where = "round " + std::to_string(settings.round);
  if (settings.local_epochs < 1)
    throw Error(where + ": local_epochs must be at least 1, got " +
                std::to_string(settings.local_epochs));
  if (settings.p < 2 || settings.k < 2)
    throw Error(where + ": batches need P >= 2 identities of K >= 2 images (the triplet and "
                "centroid losses compare them), got P=" + std::to_string(settings.p) +
                " K=" + std::to_string(settings.k));
  if (store.num_train_ids < settings.p * world)
    throw Error("the train split of '" + store.root.string() + "' has " +
                std::to_string(store.num_train_ids) + " identities but the " + where +
                " Task asks for P=" + std::to_string(settings.p) + " per batch" +
                (world > 1 ? " on each of " + std::to_string(world) + " ranks" : std::string()) +
                "; lower batch_identities on the aggregator or add identities");
  tensor::configure_torch_threads(config.profile.runtime.threads);
  model->load_shared_state(global);  // the head (classifier) is not part of `global`: kept

  // Epoch index of the loader plan: distinct per round, repeatable for the same round.
  const std::uint64_t first_epoch = settings.round * static_cast<std::uint64_t>(settings.local_epochs);
  if (first_epoch + settings.local_epochs > static_cast<std::uint64_t>(std::numeric_limits<int>::max()))
    throw Error(where + ": round * local_epochs is too large for the loader's epoch index");
  {
    std::lock_guard seeded(tensor::torch_generator_mutex());  // never in the middle of another's init
    torch::manual_seed(settings.seed * 1000003ULL + settings.round);
  }

  data::LoaderOptions loader_options = config.profile.loader;
  loader_options.p = settings.p;
  loader_options.k = settings.k;
  loader_options.seed = settings.seed;
  std::unique_ptr<dist::GradientSync> sync;
  if (comm) sync = prepare_data_parallel(model, center, config.distributed, *comm, loader_options);
  data::TrainLoader loader(store, config.profile.transform, loader_options);

  torch::optim::Adam optimizer(trainable_parameters(model),
                               torch::optim::AdamOptions(settings.learning_rate)
                                   .weight_decay(settings.weight_decay));
  torch::optim::SGD center_optimizer(center->parameters(),
                                     torch::optim::SGDOptions(config.optimizer.center_lr));
  StepContext step{model, center, optimizer, center_optimizer, config.loss,
                   ProximalAnchor{&global, settings.fedprox_mu}, comm, sync.get()};
  // Rank 0 decides whether to go on (its callback sees the aggregator and the stop flag); the
  // decision is broadcast so every rank stops at the same step.
  auto go_on = [&](const LocalRoundProgress& progress) {
    if (!comm) return !before_step || before_step(progress);
    int go = 1;
    if (comm->rank() == 0 && before_step) go = before_step(progress) ? 1 : 0;
    torch::Tensor flag = torch::tensor({go}, torch::kInt32);
    comm->broadcast(flag, 0, where + ": continue-or-stop decision");
    return flag.item<int>() == 1;
  };

  LocalRoundResult result;
  result.samples = store.train.size();
  LossMeans means;
  std::int64_t images = 0;
  const auto started = std::chrono::steady_clock::now();
  const int steps_planned = settings.local_epochs * loader.batches_per_epoch();
  model->train();
  bool stopped = false;
  for (int e = 0; e < settings.local_epochs && !stopped; ++e) {
    loader.start_epoch(static_cast<int>(first_epoch) + e);
    while (auto batch = loader.next()) {
      if (!go_on({e, means.steps(), steps_planned})) {
        stopped = true;
        break;
      }
      means.add(train_step(step, *batch, [&](double total) {
        return "the training loss became " + std::to_string(total) + " in " + where +
               ", local epoch " + std::to_string(e + 1) + ", step " +
               std::to_string(means.steps() + 1) + "; lower the learning rate (" +
               std::to_string(settings.learning_rate) + ") or fedprox_mu (" +
               std::to_string(settings.fedprox_mu) + ") on the aggregator";
      }));
      images += batch->size() * world;
    }
  }
  if (comm) {
    if (config.distributed.batch_norm == "local") average_batch_norm_statistics(*model, *comm);
    set_batch_norm_sync(*model, nullptr);  // the model outlives the round; comm may not
  }
  result.completed = !stopped;
  result.steps = means.steps();
  result.mean_loss = means.mean();
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  result.images_per_second = result.seconds > 0 ? images / result.seconds : 0.0;
  if (result.completed && result.steps == 0)
    throw Error(where + " produced no batches from '" + store.root.string() +
                "': every identity needs at least K=" + std::to_string(settings.k) + " images");
  return result;
}

}  // namespace ppreid::reid
