#include "apps/ppreid/commands.h"

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "core/deid/pis/one_time_key.h"

namespace ppreid::deid::pis {
namespace {

struct KeygenArgs {
  std::string out;
};

struct RevealArgs {
  std::string one_time_key;
  std::string key_file;
  bool json = false;
};

std::string pid4(int pid) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d", pid);
  return buf;
}

nlohmann::json partners_json(const std::vector<PartnerImage>& partners) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& p : partners) out.push_back({{"pid", p.pid}, {"path", p.path}});
  return out;
}

std::string partner_pids(const std::vector<PartnerImage>& partners) {
  std::string out;
  for (const auto& p : partners) out += (out.empty() ? "" : " ") + pid4(p.pid);
  return out;
}

void run_keygen(const KeygenArgs& a) {
  create_key_file(a.out);
  std::cout << "wrote a new key file '" << a.out << "' (mode 0600)\n"
            << "keep it apart from the released data: with it, a one-time key re-identifies "
               "every shifted person\n";
}

void run_reveal(const RevealArgs& a) {
  const ShiftPlan plan = read_one_time_key(a.one_time_key, a.key_file);
  // The lookup direction of a re-identification: by new label.
  std::vector<const IdentityShift*> shifts;
  for (const auto& [pid, s] : plan.by_pid) shifts.push_back(&s);
  std::sort(shifts.begin(), shifts.end(),
            [](const auto* x, const auto* y) { return x->new_pid < y->new_pid; });

  if (a.json) {
    nlohmann::json identities = nlohmann::json::array(), distractors = nlohmann::json::array();
    for (const auto* s : shifts)
      identities.push_back({{"new_pid", s->new_pid},
                            {"original_pid", s->original_pid},
                            {"partners", partners_json(s->partners)}});
    for (const auto& [image, s] : plan.distractors)
      distractors.push_back({{"image", image}, {"partners", partners_json(s.partners)}});
    nlohmann::json out = {{"one_time_key", a.one_time_key},
                          {"lambdas", plan.lambdas},
                          {"cross_dataset", plan.cross_dataset},
                          {"identities", identities},
                          {"distractors", distractors}};
    std::cout << out.dump(2) << "\n";
    return;
  }
  std::cout << "one-time key '" << a.one_time_key << "': " << shifts.size()
            << " identities, k = " << plan.lambdas.size() << ", weights";
  for (double l : plan.lambdas) std::cout << " " << l;
  std::cout << ", partners from " << (plan.cross_dataset ? "another dataset" : "the same dataset")
            << "\n\nnew_pid  original_pid  partner_pids\n";
  for (const auto* s : shifts)
    std::cout << pid4(s->new_pid) << "     " << pid4(s->original_pid) << "          "
              << partner_pids(s->partners) << "\n";
  if (!plan.distractors.empty()) {
    std::cout << "\n"
              << plan.distractors.size()
              << " distractor images (label 0 kept, each mixed with its own partner)\n"
              << "image  partner_pids\n";
    for (const auto& [image, s] : plan.distractors)
      std::cout << image << "  " << partner_pids(s.partners) << "\n";
  }
}

}  // namespace

CLI::App* register_pis_commands(CLI::App& app) {
  CLI::App* pis =
      app.add_subcommand("pis", "Person identity shift: train the model, manage one-time keys");
  pis->require_subcommand(1);

  auto k = std::make_shared<KeygenArgs>();
  CLI::App* keygen = pis->add_subcommand(
      "keygen", "Create a key file (256-bit, mode 0600) that encrypts PIS one-time keys");
  keygen->add_option("--out", k->out, "The new key file (an existing file is never replaced)")
      ->required();
  keygen->callback([k] { run_keygen(*k); });

  auto r = std::make_shared<RevealArgs>();
  CLI::App* reveal = pis->add_subcommand(
      "reveal",
      "Decrypt a one-time key and print new label -> original identity and partners (for the "
      "data owner, when re-identification is legally required)");
  reveal->add_option("--one-time-key", r->one_time_key, "The encrypted one-time key of a release")
      ->required();
  reveal->add_option("--key-file", r->key_file, "The key file it was encrypted with")->required();
  reveal->add_flag("--json", r->json, "Print the mapping as JSON");
  reveal->callback([r] { run_reveal(*r); });
  return pis;
}

}  // namespace ppreid::deid::pis
