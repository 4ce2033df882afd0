#pragma once

#include "core/data/synth/canvas.h"
#include "core/data/synth/skeleton.h"
#include "core/data/synth/traits.h"

namespace ppreid::data::synth {

// Draws the person with `traits` in `body`'s pose as seen through `projector`, back to front for
// that view (far-side limbs first and darker in side views). Everything goes through `canvas`, so
// its mask ends up marking exactly the person's pixels.
void paint_person(const IdentityTraits& traits, const Body& body, const Projector& projector,
                  Canvas& canvas);

}  // namespace ppreid::data::synth
