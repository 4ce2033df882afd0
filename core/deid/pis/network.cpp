#include "core/deid/pis/network.h"

#include "core/util/error.h"

namespace ppreid::deid::pis {
namespace F = torch::nn::functional;
namespace {

torch::nn::Conv2d conv(int in, int out, int kernel, int stride = 1) {
  return torch::nn::Conv2d(
      torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2));
}

}  // namespace

ResBlockImpl::ResBlockImpl(int channels, int skip_channels) {
  conv_ = register_module("conv", conv(skip_channels > 0 ? 2 * channels : channels, channels, 3));
  if (skip_channels > 0) skip_proj_ = register_module("skip_proj", conv(skip_channels, channels, 1));
}

torch::Tensor ResBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& skip) {
  torch::Tensor h = F::elu(x);
  if (skip_proj_) {
    if (!skip.defined()) throw Error("ResBlock: this block needs a skip input");
    h = torch::cat({h, skip_proj_(F::elu(skip))}, 1);
  }
  return x + conv_(h);
}

SubPixelUpImpl::SubPixelUpImpl(int in_channels, int out_channels) {
  conv_ = register_module("conv", conv(in_channels, 4 * out_channels, 3));
}

torch::Tensor SubPixelUpImpl::forward(const torch::Tensor& x) {
  return F::pixel_shuffle(conv_(x), F::PixelShuffleFuncOptions(2));
}

EncoderImpl::EncoderImpl(int in_channels, const std::vector<int>& channels, int blocks) {
  conv_in_ = register_module("conv_in", conv(in_channels, channels[0], 3));
  for (size_t i = 0; i < channels.size(); ++i) {
    blocks_.emplace_back();
    for (int b = 0; b < blocks; ++b)
      blocks_.back().push_back(register_module(
          "scale" + std::to_string(i) + "_block" + std::to_string(b), ResBlock(channels[i])));
    if (i + 1 < channels.size())
      down_.push_back(
          register_module("down" + std::to_string(i), conv(channels[i], channels[i + 1], 3, 2)));
  }
}

std::vector<torch::Tensor> EncoderImpl::forward(const torch::Tensor& x) {
  std::vector<torch::Tensor> features;
  torch::Tensor h = conv_in_(x);
  for (size_t i = 0; i < blocks_.size(); ++i) {
    for (auto& block : blocks_[i]) h = block(h);
    features.push_back(h);
    if (i < down_.size()) h = down_[i](h);
  }
  return features;
}

PisNetImpl::PisNetImpl(NetworkOptions options, int num_ids, int height, int width)
    : options_(std::move(options)), num_ids_(num_ids) {
  const auto& ch = options_.channels;
  const int n = static_cast<int>(ch.size());
  if (n < 2) throw Error("PIS network: needs at least 2 scales");
  const int divisor = 1 << (n - 1);
  if (height <= 0 || width <= 0 || height % divisor || width % divisor)
    throw Error("PIS network: input " + std::to_string(height) + "x" + std::to_string(width) +
                " is not divisible by 2^(scales-1) = " + std::to_string(divisor));
  if (options_.latent_scales < 1 || options_.latent_scales > n)
    throw Error("PIS network: latent_scales must be in 1.." + std::to_string(n));
  const int zc = options_.latent_channels;
  prior_enc_ = register_module("prior", Encoder(3, ch, options_.blocks));
  posterior_enc_ = register_module("posterior", Encoder(6, ch, options_.blocks));
  for (int i = first_latent_scale(); i < n; ++i) {
    const std::string s = std::to_string(i);
    prior_mu_.push_back(register_module("prior_mu" + s, conv(ch[i], zc, 1)));
    posterior_mu_.push_back(register_module("posterior_mu" + s, conv(ch[i], zc, 1)));
    if (options_.posterior_variance == "learned")
      posterior_logvar_.push_back(register_module("posterior_logvar" + s, conv(ch[i], zc, 1)));
    // The coarsest scale starts the decoder from [E_psi features, z]; finer latent scales add z
    // to the upsampled decoder state.
    fuse_.push_back(register_module("decoder_fuse" + s, conv(ch[i] + zc, ch[i], 1)));
  }
  dec_blocks_.resize(n);
  for (int i = n - 1; i >= 0; --i) {
    for (int b = 0; b < options_.blocks; ++b)
      dec_blocks_[i].push_back(register_module(
          "decoder_scale" + std::to_string(i) + "_block" + std::to_string(b), ResBlock(ch[i], ch[i])));
  }
  for (int i = 0; i + 1 < n; ++i)
    up_.push_back(register_module("decoder_up" + std::to_string(i), SubPixelUp(ch[i + 1], ch[i])));
  conv_out_ = register_module("decoder_out", conv(ch[0], 3, 3));
  if (num_ids_ > 0) {
    std::int64_t in = 0;
    for (int i = first_latent_scale(); i < n; ++i)
      in += options_.app_pooling == "average" ? zc : std::int64_t{zc} * (height >> i) * (width >> i);
    classifier_ = register_module("classifier", torch::nn::Linear(in, num_ids_));
  }
}

std::vector<torch::Tensor> PisNetImpl::structure(const torch::Tensor& stickman) {
  return prior_enc_(stickman);
}

LatentGaussian PisNetImpl::prior(const std::vector<torch::Tensor>& features) {
  LatentGaussian g;
  for (int i = first_latent_scale(), j = 0; i < scales(); ++i, ++j)
    g.mu.push_back(prior_mu_[j](features[i]));
  return g;
}

LatentGaussian PisNetImpl::posterior(const torch::Tensor& image, const torch::Tensor& stickman) {
  auto features = posterior_enc_(torch::cat({image, stickman}, 1));
  LatentGaussian g;
  for (int i = first_latent_scale(), j = 0; i < scales(); ++i, ++j) {
    g.mu.push_back(posterior_mu_[j](features[i]));
    // Clamped so exp() cannot overflow early in training.
    if (!posterior_logvar_.empty())
      g.logvar.push_back(posterior_logvar_[j](features[i]).clamp(-10.0, 10.0));
  }
  return g;
}

torch::Tensor PisNetImpl::decode(const std::vector<torch::Tensor>& z,
                                 const std::vector<torch::Tensor>& features) {
  const int n = scales();
  if (static_cast<int>(z.size()) != options_.latent_scales || static_cast<int>(features.size()) != n)
    throw Error("PIS decode: expected " + std::to_string(options_.latent_scales) +
                " latent tensors and " + std::to_string(n) + " structure maps");
  const int first = first_latent_scale();
  torch::Tensor h = fuse_.back()(torch::cat({features[n - 1], z.back()}, 1));
  for (int i = n - 1; i >= 0; --i) {
    if (i < n - 1) {
      h = up_[i](h);
      if (i >= first) h = fuse_[i - first](torch::cat({h, z[i - first]}, 1));
    }
    for (auto& block : dec_blocks_[i]) h = block(h, features[i]);
  }
  return torch::tanh(conv_out_(F::elu(h)));
}

torch::Tensor PisNetImpl::classify(const std::vector<torch::Tensor>& mu) {
  if (num_ids_ <= 0) throw Error("PIS network: this model has no identity classifier");
  std::vector<torch::Tensor> parts;
  for (const auto& m : mu)
    parts.push_back(options_.app_pooling == "average" ? m.mean({2, 3}) : m.flatten(1));
  return classifier_(torch::cat(parts, 1));
}

std::int64_t count_parameters(torch::nn::Module& module) {
  std::int64_t n = 0;
  for (const auto& p : module.parameters())
    if (p.requires_grad()) n += p.numel();
  return n;
}

}  // namespace ppreid::deid::pis
