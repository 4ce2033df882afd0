#!/usr/bin/env bash
# PIS against the classic de-identification baselines on the synthetic dataset, tiny profile:
# the privacy/utility table of the README (the PIS paper's Table 2 protocol, scaled down).
#
#   bench/pis_privacy_utility.sh [WORKDIR]        (default: build/pis-pu)
#
# Steps (every seed is fixed, so a rerun reproduces the numbers):
#   1. data: `synth --config tiny --ids 200 --images-per-id 8 --seed 3`: 100 train identities
#      (the targets) and 100 test identities;
#   2. the attacker's ReID model, trained on the raw images of OTHER people: the 100 test
#      identities of the same population (a model trained on another synthetic population, i.e.
#      another seed with other cameras and scenes, barely transfers: mAP 0.07, so it would flatter
#      every method);
#   3. PIS trained on the target dataset's train split (configs/pis/tiny.yaml);
#   4. for each method (none, Gaussian blur L 21x11, pixelization 4x4, PIS k=2 lambda=0.5) the
#      whole dataset is de-identified; PIS writes its one-time key encrypted, outside the data;
#   5. T_u: a ReID model (configs/train/tiny.yaml) trained on the de-identified train split and
#      evaluated on the de-identified query/gallery (mAP, Rank-1);
#   6. T_p: `privacy identity-attack`: raw train images of the target identities query the
#      de-identified train split with the attacker's model; a hit is the original identity or,
#      for PIS, the partner mixed in (decrypted from the one-time key);
#   7. PU-score 2 / (1/S_u + 1/(1 - S_p)) for mAP and Rank-1.
# Output: WORKDIR/results.json and WORKDIR/results.md. Needs python3 for the table only.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="build/ppreid --log-level warn"
WORK=${1:-build/pis-pu}
mkdir -p "$WORK"


step() { echo "== $*" >&2; }
[[ -x build/ppreid ]] || { echo "build first: ./run.sh build" >&2; exit 1; }

if [[ ! -d $WORK/data ]]; then
  step "synthetic data"
  $BIN synth --config tiny --ids 200 --images-per-id 8 --distractors 20 --seed 3 --out "$WORK/data" >/dev/null
fi
if [[ ! -d $WORK/attacker-data ]]; then
  # The attacker's training set: the raw query + gallery identities (never the targets), in the
  # train directory; its own query/gallery only serve the end-of-training report.
  step "attacker data (raw images of the non-target identities)"
  mkdir -p "$WORK/attacker-data.tmp/bounding_box_train"
  for split in query bounding_box_test; do
    find "$WORK/data/$split" -name '[0-9]*.jpg' ! -name '0000_*' -exec cp -l {} "$WORK/attacker-data.tmp/bounding_box_train/" \;
    cp -rl "$WORK/data/$split" "$WORK/attacker-data.tmp/$split"
  done
  mv "$WORK/attacker-data.tmp" "$WORK/attacker-data"
fi
if [[ ! -f $WORK/attacker/summary.json ]]; then
  step "attacker ReID model (other identities, raw images)"
  $BIN train --data "$WORK/attacker-data" --config configs/train/tiny.yaml --out "$WORK/attacker" >/dev/null
fi
if [[ ! -f $WORK/pis/summary.json ]]; then
  step "PIS training"
  $BIN pis train --data "$WORK/data" --config configs/pis/tiny.yaml --out "$WORK/pis" >/dev/null
fi
[[ -f $WORK/keys/otk.key ]] || { mkdir -p "$WORK/keys"; $BIN pis keygen --out "$WORK/keys/otk.key"; }

declare -A FLAGS=(
  [none]="--method none"
  [blur_L]="--method blur --kernel L"
  [pixelate]="--method pixelate --block 4"
  [pis]="--method pis --model $WORK/pis/checkpoint --seed 5 --one-time-key $WORK/keys/pis.otk --key-file $WORK/keys/otk.key"
)
for m in none blur_L pixelate pis; do
  if [[ ! -f $WORK/deid-$m/deid.json ]]; then
    step "de-identify: $m"
    rm -rf "$WORK/deid-$m" "$WORK/keys/pis.otk"
    # shellcheck disable=SC2086
    $BIN deid ${FLAGS[$m]} --in "$WORK/data" --out "$WORK/deid-$m" \
      --report "$WORK/quality-$m.json" >/dev/null
  fi
  if [[ ! -f $WORK/utility-$m/summary.json ]]; then
    step "utility model: $m"
    rm -rf "$WORK/utility-$m"
    $BIN train --data "$WORK/deid-$m" --config configs/train/tiny.yaml --out "$WORK/utility-$m" >/dev/null
  fi
  if [[ ! -f $WORK/attack-$m.json ]]; then
    step "identity attack: $m"
    extra=()
    [[ $m == pis ]] && extra=(--one-time-key "$WORK/keys/pis.otk" --key-file "$WORK/keys/otk.key")
    $BIN privacy identity-attack --attacker "$WORK/attacker/checkpoint" --raw "$WORK/data" \
      --deid "$WORK/deid-$m" "${extra[@]}" --json > "$WORK/attack-$m.json.tmp"
    mv "$WORK/attack-$m.json.tmp" "$WORK/attack-$m.json"
  fi
done

python3 - "$WORK" <<'PY'
import json, sys, os
work = sys.argv[1]
def pu(su, sp):
    return 0.0 if su == 0 or sp >= 1 else 2 / (1 / su + 1 / (1 - sp))
rows = []
for m in ["none", "blur_L", "pixelate", "pis"]:
    u = json.load(open(f"{work}/utility-{m}/summary.json"))["metrics"]["instance"]
    a = json.load(open(f"{work}/attack-{m}.json"))
    d = json.load(open(f"{work}/quality-{m}.json"))  # the private report, not the release
    rows.append(dict(method=m, tu_map=u["mAP"], tu_r1=u["rank1"], tp_map=a["mAP"], tp_r1=a["rank1"],
                     pu_map=pu(u["mAP"], a["mAP"]), pu_r1=pu(u["rank1"], a["rank1"]),
                     ssim=d.get("mean_ssim")))
json.dump(rows, open(f"{work}/results.json", "w"), indent=2)
lines = ["| method | T_u mAP | T_u R-1 | T_p mAP | T_p R-1 | PU mAP | PU R-1 | SSIM to raw |",
         "|---|---|---|---|---|---|---|---|"]
for r in rows:
    lines.append("| {method} | {tu_map:.3f} | {tu_r1:.3f} | {tp_map:.3f} | {tp_r1:.3f} | {pu_map:.3f} | {pu_r1:.3f} | {ssim:.3f} |".format(**r))
open(f"{work}/results.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
