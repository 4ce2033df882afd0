#include "core/deid/pis/pis_deidentifier.h"

#include <cmath>

#include "core/data/stickman.h"
#include "core/deid/pis/one_time_key.h"
#include "core/util/error.h"
#include "core/util/image.h"
#include "core/util/random_source.h"

namespace ppreid::deid::pis {

PisDeidentifier::PisDeidentifier(PisShiftOptions options)
    : options_(std::move(options)),
      lambdas_(make_lambdas(options_.k, options_.lambda)),
      model_(load_pis_model(options_.model)) {
  validate_lambdas(lambdas_, options_.max_weight);
  if (options_.partners) partner_dataset_ = data::load_dataset(*options_.partners);
}

nlohmann::json PisDeidentifier::parameters() const {
  // The model is identified by what it is, never by where it lives on this machine; the partner
  // choice itself is the one-time key and is not a parameter.
  return {{"k", options_.k},
          {"lambdas", lambdas_},
          {"max_weight", options_.max_weight},
          {"latent", options_.sample ? "sample" : "mean"},
          {"partners", options_.partners ? "cross-dataset" : "inside-dataset"},
          {"opposite_attribute", options_.opposite_attribute},
          {"randomness", options_.seed ? "seeded DRBG (experiments)" : "csprng"},
          {"model",
           {{"steps", model_.info.step},
            {"feature_network", model_.info.feature_network},
            {"height", model_.info.geometry.height},
            {"width", model_.info.geometry.width},
            {"metrics", model_.info.metrics}}}};
}

torch::Tensor PisDeidentifier::stickmen(const std::vector<const data::Pose*>& poses) const {
  std::vector<torch::Tensor> s;
  for (const auto* pose : poses) s.push_back(network_stickman(*pose, model_.info.geometry));
  return torch::stack(s);
}

LatentGaussian PisDeidentifier::encode(const std::vector<cv::Mat>& images,
                                       const torch::Tensor& stickmen) const {
  std::vector<torch::Tensor> x;
  for (const auto& image : images) x.push_back(network_image(image, model_.info.geometry));
  torch::NoGradGuard no_grad;
  return model_.net->posterior(torch::stack(x), stickmen);
}

void PisDeidentifier::prepare(const data::Dataset& dataset) {
  PartnerOptions po;
  po.k = options_.k;
  po.opposite_attribute = options_.opposite_attribute;
  po.seed = options_.seed;
  layout_ = dataset.layout;
  if (options_.one_time_key && !options_.key_file)
    throw UsageError("a one-time key is only written encrypted: give a key file too");
  if (options_.reuse_one_time_key && options_.one_time_key &&
      std::filesystem::exists(*options_.one_time_key)) {
    plan_ = read_one_time_key(*options_.one_time_key, *options_.key_file);
    if (plan_->lambdas != lambdas_ || plan_->cross_dataset != partner_dataset_.has_value())
      throw Error("one-time key '" + options_.one_time_key->string() +
                  "' was made with other --k/--lambda/--partners settings; use the same flags");
  } else {
    plan_ = plan_identity_shift(dataset, partner_dataset_ ? &*partner_dataset_ : nullptr, po, lambdas_);
    // Written before any image: a killed run can then be resumed with the very same identities.
    if (options_.one_time_key) write_one_time_key(*options_.one_time_key, *plan_, *options_.key_file);
  }

  // Encode each partner image once; every image of the identity reuses it.
  const data::Dataset& source = partner_dataset_ ? *partner_dataset_ : dataset;
  std::map<std::string, const data::ImageRecord*> by_path;
  for (const auto* split : {&source.train, &source.query, &source.gallery})
    for (const auto& r : *split) by_path[r.path] = &r;
  partner_mu_.clear();
  auto add = [&](const IdentityShift& shift) {
    for (const auto& p : shift.partners) {
      if (partner_mu_.count(p.path)) continue;
      auto it = by_path.find(p.path);
      if (it == by_path.end())
        throw Error("PIS: partner image '" + p.path + "' is not in '" + source.root.string() + "'");
      const data::Pose* pose = source.pose(*it->second);
      if (!pose || !data::usable_for_pose_conditioning(*pose))
        throw Error("PIS: partner image '" + p.path + "' has no usable pose");
      LatentGaussian q = encode({util::decode_image(source.absolute(*it->second))}, stickmen({pose}));
      partner_mu_[p.path] = q.mu;
    }
  };
  for (const auto& [pid, shift] : plan_->by_pid) add(shift);
  for (const auto& [path, shift] : plan_->distractors) add(shift);
}

const ShiftPlan& PisDeidentifier::plan() const {
  if (!plan_) throw Error("PIS: prepare() has not been called, there is no plan yet");
  return *plan_;
}

std::string PisDeidentifier::output_path(const data::ImageRecord& r) const {
  return shifted_path(r.path, layout_, plan().for_image(r).new_pid);
}

std::optional<std::string> PisDeidentifier::skip_reason(const ImageContext& ctx) const {
  if (!ctx.pose) return "no keypoints row (PIS conditions on the pose)";
  if (!data::usable_for_pose_conditioning(*ctx.pose))
    return "no usable pose: no shoulder or no hip visible";
  return std::nullopt;
}

cv::Mat PisDeidentifier::apply(const cv::Mat& bgr, const ImageContext& ctx) const {
  return apply_batch({bgr}, {ctx}).front();
}

std::vector<cv::Mat> PisDeidentifier::apply_batch(const std::vector<cv::Mat>& images,
                                                  const std::vector<ImageContext>& contexts) const {
  if (images.size() != contexts.size() || images.empty())
    throw Error("PIS: apply_batch needs one context per image");
  std::vector<const data::Pose*> poses;
  for (const auto& ctx : contexts) {
    if (!ctx.record) throw Error("PIS: an image without its dataset record cannot be shifted");
    if (auto why = skip_reason(ctx)) throw Error("PIS: " + ctx.record->path + ": " + *why);
    poses.push_back(ctx.pose);
  }
  const Geometry& g = model_.info.geometry;
  torch::NoGradGuard no_grad;
  // One stickman per pose serves both the posterior and the structure encoder.
  const torch::Tensor s_batch = stickmen(poses);
  LatentGaussian own = encode(images, s_batch);
  auto structure = model_.net->structure(s_batch);

  std::vector<const std::vector<torch::Tensor>*> partner_mus;  // per image, then per partner
  std::vector<size_t> partner_counts;
  for (const auto& ctx : contexts) {
    const IdentityShift& shift = plan().for_image(*ctx.record);
    partner_counts.push_back(shift.partners.size());
    for (const auto& p : shift.partners) partner_mus.push_back(&partner_mu_.at(p.path));
  }
  std::vector<torch::Tensor> z;
  for (size_t s = 0; s < own.mu.size(); ++s) {
    torch::Tensor mixed = own.mu[s] * lambdas_[0];
    for (size_t i = 0, next = 0; i < contexts.size(); ++i)
      for (size_t p = 0; p < partner_counts[i]; ++p)
        mixed[i] += (*partner_mus[next++])[s][0] * lambdas_[p + 1];
    z.push_back(mixed);
  }
  if (options_.sample) {
    // z ~ N(mix, I); the noise is privacy-relevant, so it comes from the CSPRNG unless seeded,
    // with one stream per image so a seeded run is independent of batching and threads.
    for (size_t i = 0; i < contexts.size(); ++i) {
      auto source = util::make_random_source(options_.seed, contexts[i].index);
      for (auto& zs : z) {
        torch::Tensor row = zs[i];
        auto n = row.numel();
        std::vector<float> noise(static_cast<size_t>(n));
        for (std::int64_t k = 0; k < n; k += 2) {
          // Box-Muller: two independent normals from two uniforms in (0, 1].
          double u1 = source->uniform_open0(), u2 = source->uniform_open0();
          double r = std::sqrt(-2.0 * std::log(u1)), t = 2.0 * M_PI * u2;
          noise[static_cast<size_t>(k)] = static_cast<float>(r * std::cos(t));
          if (k + 1 < n) noise[static_cast<size_t>(k + 1)] = static_cast<float>(r * std::sin(t));
        }
        row += torch::from_blob(noise.data(), row.sizes(), torch::kFloat32);
      }
    }
  }
  torch::Tensor out = model_.net->decode(z, structure);
  std::vector<cv::Mat> released;
  for (size_t i = 0; i < images.size(); ++i)
    released.push_back(output_image(out[i], g, images[i].rows, images[i].cols));
  return released;
}

}  // namespace ppreid::deid::pis
