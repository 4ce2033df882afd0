// The strategies on the real shared part of a ReidModel, and their independence from the thread
// count.
#include <gtest/gtest.h>

#include "aggregator/strategy.h"
#include "aggregator/update_validator.h"
#include "core/reid/model.h"
#include "tests/aggregator/agg_fixtures.h"

namespace ppreid::agg {
namespace {

using fixtures::update_of;

NamedTensors perturbed(const NamedTensors& state, int site) {
  torch::manual_seed(site);
  NamedTensors out;
  for (const auto& [name, t] : state)
    out.emplace_back(name, t.is_floating_point() ? t + 0.01 * torch::randn_like(t) : t + site);
  return out;
}

TEST(ReidModelAggregation, EveryStrategyGivesALoadableSharedState) {
  reid::ModelOptions options;
  options.backbone.arch = "resnet_tiny";
  options.num_classes = 7;
  reid::ReidModel model(options);
  const NamedTensors global = model->shared_state();
  for (const char* name : {"fedavg", "fedprox", "fedadam", "fedyogi", "median", "trimmed_mean"}) {
    StrategyConfig config;
    config.kind = strategy_kind_from_string(name);
    auto strategy = make_strategy(config);
    UpdateValidator validator;
    validator.begin_round(1, global);
    strategy->begin_round(global);
    for (int site = 1; site <= 3; ++site) {
      ModelUpdate u = update_of(fixtures::site(site), 1, 100 * site, perturbed(global, site));
      std::reverse(u.tensors.begin(), u.tensors.end());  // any order on the wire
      ASSERT_FALSE(validator.admit(u).has_value()) << name;
      strategy->add(u);
    }
    NamedTensors next = strategy->finish();
    model->load_shared_state(next);  // throws on any name/shape mismatch
    for (const auto& [tensor_name, t] : next) {
      if (tensor_name.find("num_batches_tracked") != std::string::npos) {
        EXPECT_EQ(t.item<int64_t>(), 3) << name << " " << tensor_name;  // max of +1, +2, +3
      } else {
        EXPECT_TRUE(torch::isfinite(t).all().item<bool>()) << name << " " << tensor_name;
      }
    }
  }
}

TEST(ReidModelAggregation, ResultsDoNotDependOnTheThreadCount) {
  // Large enough to be split across threads (the kernels split from 2^18 elements per thread).
  const NamedTensors global = {{"w", torch::randn({1 << 20})}, {"b", torch::randn({5})}};
  const int threads = at::get_num_threads();
  for (const char* name : {"fedavg", "fedadam", "median", "trimmed_mean"}) {
    std::vector<NamedTensors> results;
    for (int t : {1, 2}) {
      at::set_num_threads(t);
      StrategyConfig config;
      config.kind = strategy_kind_from_string(name);
      config.trim_fraction = 0.25;
      auto strategy = make_strategy(config);
      strategy->begin_round(global);
      for (int site = 1; site <= 5; ++site)
        strategy->add(update_of(fixtures::site(site), 0, site, perturbed(global, site)));
      results.push_back(strategy->finish());
    }
    for (std::size_t i = 0; i < global.size(); ++i)
      EXPECT_TRUE(torch::equal(results[0][i].second, results[1][i].second)) << name;
  }
  at::set_num_threads(threads);
}

}  // namespace
}  // namespace ppreid::agg
