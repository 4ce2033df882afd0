#!/usr/bin/env bash
# Training throughput of `ppreid train` with 1 and 2 data-parallel ranks on this machine (Gloo
# over loopback): the README's W = 1 vs W = 2 table.
#
#   bench/data_parallel_train.sh [WORKDIR] [ARCH]     (defaults: build/dp-bench, resnet_small)
#
# The runs (same data, same per-rank batch P x K = 8 x 4, 2 epochs, no evaluation between):
#   W=1, 1 thread         one process on one core
#   W=1, 2 threads        one process using both cores (intra-op parallelism)
#   W=2, 1 thread each    two processes, one core each, gradients averaged over Gloo
# images/s is what summary.json reports: all images of all ranks over the training time
# (evaluation and checkpoints excluded). Peak RSS is GNU time's, per process.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-build/dp-bench}
ARCH=${2:-resnet_small}
BIN=build/ppreid
mkdir -p "$WORK"
[[ -d $WORK/data ]] || $BIN --log-level warn synth --config tiny --ids 200 --images-per-id 8 \
  --seed 5 --out "$WORK/data" >/dev/null

config() {  # threads -> a copy of the tiny training config: ARCH, 2 epochs, P=8
  sed -e "s/^  threads: .*/  threads: $1/" -e "s/^  epochs: .*/  epochs: 2/" \
      -e "s/^  p: .*/  p: 8/" -e "s/^  arch: .*/  arch: $ARCH/" \
      -e "s/^  milestones: .*/  milestones: []/" -e "s/^  warmup_epochs: .*/  warmup_epochs: 0/" \
      configs/train/tiny.yaml > "$WORK/train-$1.yaml"
  echo "$WORK/train-$1.yaml"
}
rate() { python3 -c "import json,sys; print(round(json.load(open(sys.argv[1]))['images_per_second'],1))" "$1/summary.json"; }
rss() { grep -o 'Maximum resident set size (kbytes): [0-9]*' "$1" | grep -o '[0-9]*$' | awk '{printf "%.0f MB", $1/1024}'; }

run1() {  # threads
  local out=$WORK/w1-t$1
  rm -rf "$out"
  /usr/bin/time -v $BIN --log-level warn train --config "$(config "$1")" --data "$WORK/data" \
    --out "$out" 2> "$out.time" >/dev/null
  echo "| 1 | $1 | $(rate "$out") | $(rss "$out.time") |"
}

run2() {
  local out=$WORK/w2 port=$((29600 + RANDOM % 1000)) cfg
  cfg=$(config 1)
  rm -rf "$out" "$out.r1"
  for r in 0 1; do
    /usr/bin/time -v $BIN --log-level warn train --config "$cfg" --data "$WORK/data" \
      --out "$out$([[ $r == 1 ]] && echo .r1)" --world-size 2 --rank $r \
      --rendezvous 127.0.0.1:$port 2> "$out.time$r" >/dev/null &
  done
  wait
  echo "| 2 | 1 each | $(rate "$out") | $(rss "$out.time0") each |"
}

echo "| ranks W | threads | images/s | peak RSS |"
echo "|---|---|---|---|"
run1 1
run1 2
run2
