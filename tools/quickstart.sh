#!/usr/bin/env bash
# The offline main job, on the handwritten digits that ship with
# scikit-learn (nothing is downloaded):
#   1. set up the environment (tools/setup_env.sh);
#   2. train the teacher, resnet56 (configs/demo/resnet56_digits.py);
#   3. on the same data, epochs and seed, train resnet20 three ways: alone,
#      with the CRD + KD baseline distiller, and with its spot-adaptive swap
#      (configs/demo/resnet20_digits.py, crd_res56_res20_baseline_digits.py,
#      crd_res56_res20_digits.py), through tools/analysis/reproduce.py;
#   4. print the side-by-side table (top-1, time per iteration) and write it,
#      with the spot-rate figures, to $WORK/summary.md;
#   5. export the spot-adaptive student as a plain MMPretrain classifier and
#      evaluate it alone.
#
#   bash tools/quickstart.sh             # about 5 minutes on 2 CPU cores (after installing)
#   QUICK=1 bash tools/quickstart.sh     # about 2 minutes: a check, not a result
#   TEACHER_EPOCHS=10 EPOCHS=8 SEED=0 WORK=work_dirs/demo bash tools/quickstart.sh
#
# Running it again reuses the runs that finished in $WORK and resumes an
# interrupted one; other settings need another WORK (or remove it).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
if [ "${QUICK:-0}" = 1 ]; then
    TEACHER_EPOCHS="${TEACHER_EPOCHS:-4}"
    EPOCHS="${EPOCHS:-1}"
    WORK="${WORK:-work_dirs/demo_quick}"
else
    TEACHER_EPOCHS="${TEACHER_EPOCHS:-10}"
    EPOCHS="${EPOCHS:-8}"
    WORK="${WORK:-work_dirs/demo}"
fi
SEED="${SEED:-0}"

bash "$ROOT/tools/setup_env.sh"
cd "$ROOT"
PY="$VENV/bin/python"

echo "== teacher ($TEACHER_EPOCHS epochs), then student alone, baseline and SAKD ($EPOCHS epochs, seed $SEED) -> $WORK"
"$PY" tools/analysis/reproduce.py \
    --teacher-config configs/demo/resnet56_digits.py \
    --student-config configs/demo/resnet20_digits.py \
    --baseline-config configs/demo/crd_res56_res20_baseline_digits.py \
    --sakd-config configs/demo/crd_res56_res20_digits.py \
    --methods student baseline sakd --seeds "$SEED" \
    --teacher-epochs "$TEACHER_EPOCHS" --epochs "$EPOCHS" \
    --title 'Offline demo: CRD + KD, resnet56 -> resnet20, on scikit-learn digits' \
    --out "$WORK" --no-print

# the demo distillation configs read their teacher from
# work_dirs/demo/teacher_resnet56_digits.pth: keep a copy there for runs
# of those configs by hand (through a temporary name, never a partial file)
if [ "$WORK" = work_dirs/demo ]; then
    cp "$WORK/teacher/epoch_$TEACHER_EPOCHS.pth" "$WORK/teacher_resnet56_digits.pth.part"
    mv "$WORK/teacher_resnet56_digits.pth.part" "$WORK/teacher_resnet56_digits.pth"
fi

SAKD_CKPT="$WORK/sakd/seed_$SEED/epoch_$EPOCHS.pth"
STUDENT_CKPT="$WORK/sakd/seed_$SEED/student_epoch_$EPOCHS.pth"
LOG="$WORK/student_test.log"
echo "== the spot-adaptive student alone: exported to $STUDENT_CKPT, evaluated with configs/demo/resnet20_digits.py (log: $LOG)"
if ! { "$PY" tools/model_converters/convert_kd_ckpt_to_student.py "$SAKD_CKPT" &&
       "$PY" tools/test.py configs/demo/resnet20_digits.py "$STUDENT_CKPT" \
           --work-dir "$WORK/student_test"; } > "$LOG" 2>&1; then
    tail -n 30 "$LOG" >&2
    exit 1
fi
grep -o 'accuracy/top1: [0-9.]*' "$LOG" | tail -n 1

echo
cat "$WORK/summary.md"
echo
echo "written: $WORK/summary.md (and summary.json, spot_rates.png, spot_heatmap.png)"
