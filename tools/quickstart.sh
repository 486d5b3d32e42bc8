#!/usr/bin/env bash
# The offline main job: set up (tools/setup_env.sh), train the teacher
# (resnet56) on the digits images that ship with scikit-learn, distil it into
# resnet20 with spot-adaptive CRD + KD (configs/sakd/crd_res56_res20.py on
# that data), evaluate the student, then export it as a plain MMPretrain
# classifier and evaluate it alone. Nothing is downloaded.
#   TEACHER_EPOCHS=8 EPOCHS=6 bash tools/quickstart.sh  (the defaults)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
TEACHER_EPOCHS="${TEACHER_EPOCHS:-8}"
EPOCHS="${EPOCHS:-6}"
WORK=work_dirs/demo
TEACHER_CFG=configs/demo/resnet56_digits.py
KD_CFG=configs/demo/crd_res56_res20_digits.py

bash "$ROOT/tools/setup_env.sh"
cd "$ROOT"
PY="$VENV/bin/python"

echo "== 1/4 teacher: $TEACHER_CFG ($TEACHER_EPOCHS epochs)"
"$PY" tools/train.py "$TEACHER_CFG" --work-dir "$WORK/teacher" \
    --cfg-options train_cfg.max_epochs="$TEACHER_EPOCHS"
# the demo distillation config reads the teacher from this path; copy the
# newest best checkpoint that is intact (a complete archive), through a
# temporary name so that the teacher path never holds a partial copy
BEST="$("$PY" -c 'import sys; from mmsakd.compat import newest_intact_checkpoint as f; print(f(sys.argv[1], "best_accuracy_top1_epoch_*.pth", "") or "")' "$WORK/teacher")"
if [ -z "$BEST" ]; then
    echo "no intact best_accuracy_top1_epoch_*.pth in $WORK/teacher" >&2
    exit 1
fi
cp "$BEST" "$WORK/teacher_resnet56_digits.pth.part"
mv "$WORK/teacher_resnet56_digits.pth.part" "$WORK/teacher_resnet56_digits.pth"

echo "== 2/4 spot-adaptive distillation: $KD_CFG ($EPOCHS epochs)"
"$PY" tools/train.py "$KD_CFG" --work-dir "$WORK/sakd" \
    --cfg-options train_cfg.max_epochs="$EPOCHS"

echo "== 3/4 evaluation of the distilled student"
"$PY" tools/test.py "$KD_CFG" "$WORK/sakd/epoch_$EPOCHS.pth" \
    --work-dir "$WORK/sakd_test"

echo "== 4/4 the student alone: exported, evaluated with its own config"
"$PY" tools/model_converters/convert_kd_ckpt_to_student.py \
    "$WORK/sakd/epoch_$EPOCHS.pth"
"$PY" tools/test.py configs/demo/resnet20_digits.py \
    "$WORK/sakd/epoch_${EPOCHS}_student.pth" --work-dir "$WORK/student_test"
