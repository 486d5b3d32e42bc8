#!/usr/bin/env bash
# The offline main job: set up (tools/setup_env.sh), train the teacher on the
# digits images that ship with scikit-learn, distil it into the student with
# MMRazor, and evaluate the student. Nothing is downloaded.
#   TEACHER_EPOCHS=10 EPOCHS=6 bash tools/quickstart.sh  (the defaults)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
TEACHER_EPOCHS="${TEACHER_EPOCHS:-10}"
EPOCHS="${EPOCHS:-6}"
WORK=work_dirs/demo
TEACHER_CFG=configs/demo/resnet18-w32_digits.py
KD_CFG=configs/demo/kd-fitnet_r18w32-r18w16_digits.py

bash "$ROOT/tools/setup_env.sh"
cd "$ROOT"
PY="$VENV/bin/python"

echo "== 1/3 teacher: $TEACHER_CFG ($TEACHER_EPOCHS epochs)"
"$PY" tools/train.py "$TEACHER_CFG" --work-dir "$WORK/teacher" \
    --cfg-options train_cfg.max_epochs="$TEACHER_EPOCHS"
# the demo distillation config reads the teacher from this path
cp "$(ls -t "$WORK"/teacher/best_accuracy_top1_epoch_*.pth | head -n 1)" \
    "$WORK/teacher_resnet18-w32_digits.pth"

echo "== 2/3 distillation: $KD_CFG ($EPOCHS epochs)"
"$PY" tools/train.py "$KD_CFG" --work-dir "$WORK/kd" \
    --cfg-options train_cfg.max_epochs="$EPOCHS"

echo "== 3/3 evaluation of the distilled student"
"$PY" tools/test.py "$KD_CFG" "$WORK/kd/epoch_$EPOCHS.pth" \
    --work-dir "$WORK/kd_test"
