#include "core/reid/train_step.h"

#include <cmath>

#include "core/reid/batch_norm.h"
#include "core/reid/proximal.h"
#include "core/util/error.h"

namespace ppreid::reid {

void LossMeans::add(const StepLosses& s) {
  sum_.total += s.total, sum_.id += s.id, sum_.triplet += s.triplet, sum_.center += s.center,
      sum_.centroid += s.centroid, sum_.proximal += s.proximal;
  ++steps_;
}

StepLosses LossMeans::mean() const {
  if (steps_ == 0) return {};
  const double n = steps_;
  return {sum_.total / n,    sum_.id / n,       sum_.triplet / n,
          sum_.center / n,   sum_.centroid / n, sum_.proximal / n};
}

std::vector<torch::Tensor> trainable_parameters(const ReidModel& model) {
  std::vector<torch::Tensor> params;
  for (auto& p : model->parameters())
    if (p.requires_grad()) params.push_back(p);
  return params;
}

namespace {

StepLosses mean_over_ranks(const StepLosses& s, dist::Communicator& comm) {
  torch::Tensor v = torch::tensor({s.total, s.id, s.triplet, s.center, s.centroid, s.proximal},
                                  torch::kFloat64);
  comm.all_reduce_sum(v, "loss mean");
  v.div_(comm.world_size());
  auto a = v.accessor<double, 1>();
  return {a[0], a[1], a[2], a[3], a[4], a[5]};
}

}  // namespace

std::unique_ptr<dist::GradientSync> prepare_data_parallel(ReidModel& model, CenterLoss& center,
                                                          const DistributedOptions& options,
                                                          dist::Communicator& comm,
                                                          data::LoaderOptions& loader) {
  loader.shard_count = comm.world_size();
  loader.shard_index = comm.rank();
  set_batch_norm_sync(*model, options.batch_norm == "sync" ? &comm : nullptr);
  std::vector<torch::Tensor> synced = trainable_parameters(model);
  for (auto& p : center->parameters()) synced.push_back(p);
  return std::make_unique<dist::GradientSync>(
      comm, std::move(synced), dist::BucketOptions{options.bucket_mb, options.overlap});
}

StepLosses train_step(StepContext& ctx, const data::Batch& batch,
                      const std::function<std::string(double total)>& describe) {
  const LossWeights& w = ctx.loss.weights;
  ReidOutput out = ctx.model->forward(batch.images);
  LossParts parts = combined_loss(out, batch.labels, w, w.use_center ? &ctx.center : nullptr,
                                  ctx.loss.label_smoothing, ctx.loss.margin);
  torch::Tensor objective = parts.total;
  double proximal = 0;
  if (ctx.proximal.mu > 0) {
    torch::Tensor term =
        proximal_term(ctx.model->shared_parameters(), *ctx.proximal.global, ctx.proximal.mu);
    proximal = term.item<double>();
    objective = objective + term;
  }
  StepLosses losses{objective.item<double>(), parts.id, parts.triplet, parts.center,
                    parts.centroid, proximal};
  if (ctx.comm) losses = mean_over_ranks(losses, *ctx.comm);
  if (!std::isfinite(losses.total)) throw Error(describe(losses.total));
  ctx.optimizer.zero_grad();
  ctx.center_optimizer.zero_grad();
  if (ctx.sync) ctx.sync->begin_step();
  objective.backward();
  if (ctx.sync) ctx.sync->finish_step();
  ctx.optimizer.step();
  if (w.use_center) {
    // BoT: undo the loss weight for the centres so they move at center_lr.
    for (auto& p : ctx.center->parameters())
      if (p.grad().defined()) p.mutable_grad().mul_(1.0 / w.center);
    ctx.center_optimizer.step();
  }
  return losses;
}

}  // namespace ppreid::reid
