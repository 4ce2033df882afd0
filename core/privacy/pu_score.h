#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ppreid::privacy {

// PU-score (privacy-utility score) of the PIS paper (Dou et al. 2026, eq. 1):
//
//   PU = 2 / (I_u / S_u + I_p / (1 - S_p)),   I_u + I_p = 2,
//
// a weighted harmonic mean of the utility S_u (T_u: mAP or Rank-1 of ReID on de-identified data)
// and of 1 - S_p (S_p = T_p: the identity attack's mAP or Rank-1). Scores are fractions in
// [0, 1]; I_u = I_p = 1 weighs both tasks equally. Limits: a term with a positive weight and a
// zero denominator (S_u = 0 or S_p = 1) makes PU 0; a term with weight 0 drops out, so I_p = 0
// gives S_u and I_u = 0 gives 1 - S_p whatever the other score is.
// Throws ppreid::Error naming the bad input when a score is outside [0, 1] (or NaN), a weight is
// negative (or NaN), or the weights do not add up to 2 (within 1e-9).
double pu_score(double s_u, double s_p, double i_u = 1, double i_p = 1);

// What pu_score's checks call the four inputs in their messages; the CLI passes its flag names.
struct PuInputNames {
  std::string s_u = "S_u", s_p = "S_p", i_u = "I_u", i_p = "I_p";
};
// The checks of pu_score alone.
void check_pu_inputs(double s_u, double s_p, double i_u, double i_p,
                     const PuInputNames& names = {});

struct PuPoint {
  double i_u = 1, i_p = 1;
  double score = 0;
  nlohmann::json to_json() const;  // {"I_u","I_p","pu_score"}
};

// The I_p:I_u trade-off curve (the paper's Figure 4): `steps` + 1 points with I_p = 2 k / steps
// for k = 0..steps and I_u = 2 - I_p, so it runs from pure utility (I_p = 0, PU = S_u) to pure
// privacy (I_p = 2, PU = 1 - S_p). Throws ppreid::Error for steps < 1 and for bad scores.
std::vector<PuPoint> pu_sweep(double s_u, double s_p, int steps);

}  // namespace ppreid::privacy
