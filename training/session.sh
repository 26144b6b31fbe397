#!/usr/bin/env bash
# The dedicated training session for the embedded model, as one resumable command:
#
#   nohup bash training/session.sh >> training/runs/session.log 2>&1 &
#
# Stages (each skipped when its output exists, so re-running after any interruption continues where
# it stopped; training itself resumes from training/runs/$RUN/ckpt.pt):
#   1 corpus + held-out files   2 tokenizer   3 throughput probe (its fastest flags are used)
#   4 train                     5 export to evalsuite/default_model   6 evaluate + model card
# Re-recording baselines and compression results stay manual (training/README.md, steps 6-9): they
# are decisions to take after reading the new model card.
# Settings (environment): PRESET=v2 RUN=v2 TOKENS=30e6 DEVICE=cpu (or cuda / auto) HELDOUT=keep (or rebuild)
# PY=.venv/bin/python
# FORCE=1 runs even when other jobs load the CPU; DRY_RUN=1 prints the commands instead of running them.
set -euo pipefail
cd "$(dirname "$0")/.."
PRESET=${PRESET:-v2}
RUN=${RUN:-v2}
TOKENS=${TOKENS:-30e6}
DEVICE=${DEVICE:-cpu}
PY=${PY:-.venv/bin/python}
RUNS=${RUNS:-training/runs}
PROBE=$RUNS/probe-$PRESET.txt
mkdir -p "$RUNS"

run() {
  echo "[$(date -u +%H:%M:%S)] $*"
  if [ "${DRY_RUN:-0}" != 1 ]; then "$@"; fi
}

load=$(cut -d' ' -f1 /proc/loadavg)
if [ "${FORCE:-0}" != 1 ] && [ "$DEVICE" = cpu ] && awk "BEGIN{exit !($load > 1.0)}"; then
  echo "load average $load: other jobs share the CPU, so probe and training speeds would be wrong;" \
       "stop them (or FORCE=1)" >&2
  exit 2
fi

# HELDOUT=keep (default): the shipped held-out files stay (same split, so still disjoint from training);
# HELDOUT=rebuild rewrites them (then commit them with the model and its re-recorded baselines).
KEEP=--keep-heldout
[ "${HELDOUT:-keep}" = rebuild ] && KEEP=
# shellcheck disable=SC2086
[ -s training/corpus/stats.json ] || run "$PY" -m training.build_corpus $KEEP
[ -s training/tokenizer/tokenizer.json ] || run "$PY" -m training.train_tokenizer
if ! grep -q '^train with:' "$PROBE" 2>/dev/null; then
  if [ "${DRY_RUN:-0}" = 1 ]; then
    run "$PY" -m training.probe_throughput --preset "$PRESET" --tokens "$TOKENS" --device "$DEVICE"
  else
    run "$PY" -m training.probe_throughput --preset "$PRESET" --tokens "$TOKENS" --device "$DEVICE" | tee "$PROBE.tmp"
    mv "$PROBE.tmp" "$PROBE"
  fi
fi
FLAGS=$(sed -n 's/^train with: //p' "$PROBE" 2>/dev/null || true)
# shellcheck disable=SC2086  # the probe's flags are separate words on purpose
run "$PY" -m training.train --runs "$RUNS" --run "$RUN" --preset "$PRESET" --tokens "$TOKENS" --device "$DEVICE" $FLAGS
run "$PY" -m training.export --runs "$RUNS" --run "$RUN" --out evalsuite/default_model
run "$PY" -m training.evaluate
echo "[$(date -u +%H:%M:%S)] done: read docs/MODEL_CARD.md, then training/README.md steps 6-9"
