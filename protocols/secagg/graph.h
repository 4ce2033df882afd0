#pragma once

// Who shares secrets with whom. Small rounds use the complete graph (SecAgg); larger ones a
// random k-regular graph (SecAgg+, Bell et al. 2020): the sites are put on a ring in a random
// order and each is joined to the k/2 sites on either side, as Flower's SecAgg+ does.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace ppreid::secagg {

// Neighbourhoods of `sites` (each one includes the site itself, sorted by id). `k` is the number
// of other sites each is joined to: 0 or k >= sites - 1 means the complete graph; an odd k is
// rounded up. The ring order comes from `seed`.
std::map<std::string, std::vector<std::string>> neighbourhoods(std::vector<std::string> sites,
                                                              std::size_t k, std::uint64_t seed);

// k for `sites` sites when a fraction `dropout` of them may drop out during a round, for a
// complete graph up to `complete_up_to` sites: the smallest even k >= max(6, 2 ceil(log2 n))
// for which a neighbourhood of k + 1 keeps a majority alive with margin (the expected survivors
// minus two standard deviations reach floor((k + 1) / 2) + 1); 0 (complete) when none below n.
std::size_t neighbours_for(std::size_t sites, double dropout, std::size_t complete_up_to);

}  // namespace ppreid::secagg
