#include "simulations/site_faults.h"

#include "aggregator/model_update.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include <spdlog/spdlog.h>

#include "core/util/error.h"
#include "core/util/rng.h"

namespace ppreid::sim {
using Clock = std::chrono::steady_clock;

namespace {

// Tensor i of `shared` that a Byzantine behaviour may rewrite: a trainable floating-point
// parameter laid out as the global model's tensor i (the site checked the Task's layout; the
// name is compared for safety). BatchNorm running statistics stay the site's own: the attacks of
// the literature act on the parameters, and a variance pushed below zero is refused outright by
// the aggregator's validator (negative_variance), so an attacker gains nothing from it.
bool rewritable(const reid::NamedTensors& global, const reid::NamedTensors& shared,
                std::size_t i) {
  return i < global.size() && shared[i].second.is_floating_point() &&
         global[i].first == shared[i].first && !agg::is_batchnorm_statistic(shared[i].first);
}

constexpr std::uint64_t kGaussianStream = 0x6761757373ULL;  // "gauss"

}  // namespace

void scale_change(const reid::NamedTensors& global, reid::NamedTensors& shared, double factor) {
  for (std::size_t i = 0; i < shared.size(); ++i)
    if (rewritable(global, shared, i)) {
      const at::Tensor& g = global[i].second;
      shared[i].second = g + (shared[i].second - g) * factor;
    }
}

std::uint64_t gaussian_seed(std::uint64_t sim_seed, std::size_t site_index, std::uint64_t round) {
  return util::Rng::derive(util::Rng::derive(util::Rng::derive(sim_seed, kGaussianStream),
                                             site_index),
                           round);
}

void replace_with_noise(const reid::NamedTensors& global, reid::NamedTensors& shared, double sigma,
                        std::uint64_t seed) {
  // A generator of its own: draws neither depend on nor disturb LibTorch's global one, which
  // the site threads share.
  at::Generator generator = at::detail::createCPUGenerator(seed);
  for (std::size_t i = 0; i < shared.size(); ++i)
    if (rewritable(global, shared, i)) {
      const at::Tensor& g = global[i].second;
      shared[i].second = g + torch::randn(g.sizes(), generator, g.options()) * sigma;
    }
}

double inverse_normal_cdf(double p) {
  if (!(p > 0 && p < 1))
    throw Error("inverse_normal_cdf: p = " + std::to_string(p) + " is outside (0, 1)");
  // Acklam's rational approximation (relative error < 1.2e-9), then one Halley step on
  // Phi(x) - p with Phi from erfc, which brings it to double precision.
  static constexpr double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                                 -2.759285104469687e+02, 1.383577518672690e+02,
                                 -3.066479806614716e+01, 2.506628277459239e+00};
  static constexpr double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                                 -1.556989798598866e+02, 6.680131188771972e+01,
                                 -1.328068155288572e+01};
  static constexpr double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                                 -2.400758277161838e+00, -2.549732539343734e+00,
                                 4.374664141464968e+00,  2.938163982698783e+00};
  static constexpr double d[] = {7.784695709041462e-03, 3.224671290700398e-01,
                                 2.445134137142996e+00, 3.754408661907416e+00};
  constexpr double low = 0.02425;
  double x;
  if (p < low) {
    const double q = std::sqrt(-2 * std::log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else if (p <= 1 - low) {
    const double q = p - 0.5, r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  } else {
    const double q = std::sqrt(-2 * std::log1p(-p));
    x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  const double e = 0.5 * std::erfc(-x / std::sqrt(2.0)) - p;
  const double u = e * std::sqrt(2 * M_PI) * std::exp(x * x / 2);
  return x - u / (1 + x * u / 2);
}

double alie_z(int n, int f) {
  if (n < 2 || f < 1 || f >= n)
    throw Error("alie: " + std::to_string(f) + " colluding site(s) among " + std::to_string(n) +
                " need 1 <= colluders < sites");
  const int s = n / 2 + 1 - f;  // floor(n/2 + 1) - f
  if (s < 1)
    throw Error("alie: with " + std::to_string(f) + " colluders among " + std::to_string(n) +
                " sites they hold a majority (s = floor(n/2 + 1) - f = " + std::to_string(s) +
                " sites left to win over), where the paper's z is undefined; use fewer "
                "colluders or set the attack's z");
  return inverse_normal_cdf(static_cast<double>(n - s) / n);
}

reid::NamedTensors alie_update(const std::vector<reid::NamedTensors>& honest, double z,
                               const reid::NamedTensors& own) {
  if (honest.empty()) throw Error("alie: no honest update to craft from");
  reid::NamedTensors out = own;
  for (std::size_t i = 0; i < own.size(); ++i) {
    if (!own[i].second.is_floating_point() || agg::is_batchnorm_statistic(own[i].first)) continue;
    std::vector<at::Tensor> column;
    for (const auto& h : honest) {
      if (h.size() != own.size() || h[i].first != own[i].first ||
          h[i].second.sizes() != own[i].second.sizes())
        throw Error("alie: an honest update does not have the model's layout at '" +
                    own[i].first + "'");
      column.push_back(h[i].second.to(torch::kFloat64));
    }
    const at::Tensor stacked = torch::stack(column);
    const at::Tensor mean = stacked.mean(0);
    // One update has no spread (torch.std would give NaN): the colluders send the mean.
    const at::Tensor shifted =
        column.size() < 2 ? mean : mean - z * stacked.std(0, /*unbiased=*/true);
    out[i].second = shifted.to(own[i].second.scalar_type());
  }
  return out;
}

void flip_labels(std::vector<data::ImageRecord>& train, int num_train_ids) {
  if (num_train_ids < 2)
    throw Error("label_flip: the site has " + std::to_string(num_train_ids) +
                " identity; relabelling each image as another identity needs at least 2");
  std::vector<int> seen(static_cast<std::size_t>(num_train_ids), 0);
  for (auto& r : train) {
    if (r.label < 0 || r.label >= num_train_ids)
      throw Error("label_flip: train image '" + r.path + "' has label " +
                  std::to_string(r.label) + " outside 0.." + std::to_string(num_train_ids - 1));
    const int k = seen[static_cast<std::size_t>(r.label)]++;
    r.label = (r.label + 1 + k % (num_train_ids - 1)) % num_train_ids;
  }
}

// ---- AlieBoard -------------------------------------------------------------------------------

AlieBoard::AlieBoard(std::vector<std::string> honest_sites, double z,
                     std::chrono::milliseconds wait)
    : honest_(std::move(honest_sites)), z_(z), wait_(wait) {}

void AlieBoard::post(std::uint64_t round, const std::string& site,
                     const reid::NamedTensors& sent) {
  reid::NamedTensors copy;
  copy.reserve(sent.size());
  for (const auto& [name, t] : sent) copy.emplace_back(name, t.detach().clone());
  {
    std::lock_guard lock(mu_);
    // Older rounds are over: nobody crafts for them any more.
    while (!rounds_.empty() && rounds_.begin()->first + 1 < round) rounds_.erase(rounds_.begin());
    Round& r = rounds_[round];
    r.posted[site] = std::move(copy);
    r.crafted.reset();  // a retried round: craft again from the new updates
  }
  changed_.notify_all();
}

void AlieBoard::leave(const std::string& site) {
  {
    std::lock_guard lock(mu_);
    left_.insert(site);
  }
  changed_.notify_all();
}

void AlieBoard::close() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  changed_.notify_all();
}

bool AlieBoard::complete(const Round& r) const {
  for (const auto& site : honest_)
    if (!r.posted.count(site) && !left_.count(site)) return false;
  return true;
}

std::optional<reid::NamedTensors> AlieBoard::craft(std::uint64_t round,
                                                   const std::string& colluder,
                                                   const reid::NamedTensors& own) {
  std::unique_lock lock(mu_);
  const auto started = Clock::now();
  const bool in_time = changed_.wait_until(lock, started + wait_, [&] {
    return closed_ || complete(rounds_[round]);
  });
  Round& r = rounds_[round];  // looked up after the wait: post() may have pruned the map
  if (r.crafted) return r.crafted;
  if (!in_time) {
    std::string missing;
    for (const auto& site : honest_)
      if (!r.posted.count(site) && !left_.count(site)) missing += (missing.empty() ? "" : ", ") + site;
    spdlog::warn("alie: {} waited {:.1f} s for the honest updates of round {}; still missing {}; "
                 "crafting from the {} posted",
                 colluder, std::chrono::duration<double>(Clock::now() - started).count(), round,
                 missing, r.posted.size());
  }
  if (r.posted.empty()) {
    spdlog::warn("alie: {} has no honest update of round {} to craft from; it sends its own",
                 colluder, round);
    return std::nullopt;
  }
  std::vector<reid::NamedTensors> honest;
  for (const auto& [site, update] : r.posted) honest.push_back(update);
  r.crafted = alie_update(honest, z_, own);
  spdlog::info("alie: round {}: mean - {:.4f} x std of {} honest update(s), sent by {} and the "
               "other colluders",
               round, z_, honest.size(), colluder);
  return r.crafted;
}

// ---- hooks -----------------------------------------------------------------------------------

client::SiteHooks fault_hooks(const std::vector<FaultSpec>& faults, const FaultContext& ctx) {
  using K = FaultSpec::Kind;
  if (faults.empty() && !ctx.board) return {};
  const bool colluder = std::any_of(faults.begin(), faults.end(),
                                    [](const FaultSpec& f) { return f.kind == K::kAlie; });
  client::SiteHooks hooks;
  hooks.before_update = [faults, ctx, colluder](std::uint64_t round,
                                                const reid::NamedTensors& global,
                                                reid::NamedTensors& shared) {
    client::UpdateDecision decision;
    bool crafting = false;
    for (const FaultSpec& f : faults) {
      if (!f.applies(static_cast<std::int64_t>(round))) continue;
      switch (f.kind) {
        case K::kDropout:
          if (f.stage != "update") break;  // secure_stage below
          decision.action = client::UpdateAction::kVanish;
          if (ctx.board) ctx.board->leave(ctx.site_id);
          return decision;
        case K::kStraggler:
          decision.delay += f.delay;
          break;
        case K::kNan:
          for (auto& [name, t] : shared)
            if (t.is_floating_point()) t = torch::full_like(t, std::nan(""));
          break;
        case K::kScale:
          scale_change(global, shared, f.factor);
          break;
        case K::kSignFlip:
          scale_change(global, shared, -f.factor);
          break;
        case K::kGaussian:
          replace_with_noise(global, shared, f.sigma, gaussian_seed(ctx.seed, ctx.site_index, round));
          break;
        case K::kAlie:
          crafting = true;
          break;
        case K::kLabelFlip:  // poisoned its data before training (on_train_split)
        case K::kSampleLie:  // lies in claimed_samples
          break;
      }
    }
    if (!ctx.board) return decision;
    if (crafting) {
      if (auto crafted = ctx.board->craft(round, ctx.site_id, shared)) shared = *crafted;
    } else if (!colluder) {
      ctx.board->post(round, ctx.site_id, shared);
    }
    return decision;
  };
  for (const FaultSpec& f : faults) {
    if (f.kind == K::kLabelFlip) hooks.on_train_split = flip_labels;
    if (f.kind == K::kSampleLie) {
      // The Hello (round 0) precedes every round, so it lies whatever the fault's rounds; the
      // Updates lie in the fault's rounds.
      hooks.claimed_samples = [f](std::uint64_t round, std::uint64_t real) {
        if (round != 0 && !f.applies(static_cast<std::int64_t>(round))) return real;
        return static_cast<std::uint64_t>(std::llround(static_cast<double>(real) * f.factor));
      };
    }
  }
  const bool stage_dropout = std::any_of(faults.begin(), faults.end(), [](const FaultSpec& f) {
    return f.kind == K::kDropout && f.stage != "update";
  });
  if (stage_dropout)
    hooks.secure_stage = [faults](std::uint64_t round, const std::string& stage) {
      for (const FaultSpec& f : faults)
        if (f.kind == K::kDropout && f.stage == stage && f.applies(static_cast<std::int64_t>(round)))
          return false;
      return true;
    };
  return hooks;
}

}  // namespace ppreid::sim
