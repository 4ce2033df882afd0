#include "core/privacy/pu_score.h"

#include <cmath>
#include <limits>
#include <sstream>

#include "core/util/error.h"

namespace ppreid::privacy {
namespace {

std::string number(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

}  // namespace

void check_pu_inputs(double s_u, double s_p, double i_u, double i_p, const PuInputNames& names) {
  auto score = [](double v, const std::string& name) {
    if (!(v >= 0 && v <= 1))  // also rejects NaN
      throw Error(name + " must be a fraction in [0, 1] (got " + number(v) +
                  "); give a percentage divided by 100");
  };
  auto weight = [](double v, const std::string& name) {
    if (!(v >= 0 && std::isfinite(v)))
      throw Error(name + " must be a finite weight >= 0 (got " + number(v) + ")");
  };
  score(s_u, names.s_u);
  score(s_p, names.s_p);
  weight(i_u, names.i_u);
  weight(i_p, names.i_p);
  if (std::abs(i_u + i_p - 2) > 1e-9)
    throw Error(names.i_u + " + " + names.i_p + " must be 2 (got " + number(i_u) + " + " +
                number(i_p) + " = " + number(i_u + i_p) + ")");
}

double pu_score(double s_u, double s_p, double i_u, double i_p) {
  check_pu_inputs(s_u, s_p, i_u, i_p);
  // weight / score with the limits: a weight of 0 drops the term, a score of 0 under a positive
  // weight makes it infinite (and PU 0).
  auto term = [](double weight, double score) {
    if (weight == 0) return 0.0;
    if (score == 0) return std::numeric_limits<double>::infinity();
    return weight / score;
  };
  const double denominator = term(i_u, s_u) + term(i_p, 1 - s_p);
  return std::isinf(denominator) ? 0.0 : 2 / denominator;
}

nlohmann::json PuPoint::to_json() const {
  return {{"I_u", i_u}, {"I_p", i_p}, {"pu_score", score}};
}

std::vector<PuPoint> pu_sweep(double s_u, double s_p, int steps) {
  if (steps < 1) throw Error("PU-score sweep needs at least 1 step, got " + std::to_string(steps));
  check_pu_inputs(s_u, s_p, 1, 1);
  std::vector<PuPoint> points;
  for (int k = 0; k <= steps; ++k) {
    PuPoint p;
    p.i_p = 2.0 * k / steps;
    p.i_u = 2.0 - p.i_p;
    p.score = pu_score(s_u, s_p, p.i_u, p.i_p);
    points.push_back(p);
  }
  return points;
}

}  // namespace ppreid::privacy
