#!/usr/bin/env bash
# One-go GPU check of the engine (issue 16) for a session that holds the H200 machine.
#
# Prepare here (the machine has no network; Python 3.12, torch, opencv, onnxruntime, pandas,
# pyarrow, typer, tqdm, safetensors are there; these are not):
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
#     --platform manylinux2014_x86_64 -d .whl segmentation-models-pytorch colour-science \
#     pydicom timm huggingface-hub   # + whatever `Requires-Dist` of these is missing there
# Run there (device tool): command "bash scripts/bench_gpu.sh", carry [".whl"], timeout_s 590.
# Every step has its own time limit and writes its log under $OUT, so a partial run still
# tells something; the total stays under ~9 minutes.
set -u
OUT=${OUT:-/tmp/bench-gpu-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
PY=${PY:-python3}
T0=$(date +%s)
step() {  # step NAME SECONDS COMMAND...
  local name=$1 limit=$2; shift 2
  echo "=== $name (limit ${limit}s, at $(( $(date +%s) - T0 ))s)" | tee -a "$OUT/summary.txt"
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  tail -n 25 "$OUT/$name.log"
  echo "=== $name: rc=$rc after $(( $(date +%s) - T0 ))s" | tee -a "$OUT/summary.txt"
}
if ls .whl/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=$PWD:/tmp/site
fi
step machine 20 bash -c "nvidia-smi; nproc; $PY -c 'import torch, cv2; print(torch.__version__, torch.cuda.is_available(), cv2.__version__)'"
# equivalence: CPU eager, CPU fast path, GPU (Pillow decode in workers, and nvJPEG) + assessments
step tests 170 $PY -m pytest -q -p no:cacheprovider tests/pipeline/test_engine.py \
  tests/pipeline/test_assessment.py -k "gpu_path or cpu_path or assessment or scene"
# CPU accounting per stage and process, bytes between processes, start-up; jobs 1, 2, 16;
# the real network and a 20 ms stand-in; 24 photos at 4000x3000 (generated first)
step bench_cpu 230 $PY -m pipeline.cli bench --cpu --out "$OUT/bench" --photos 24
cp "$OUT/bench/bench-cpu.json" "$OUT/" 2>/dev/null
# end to end as a user runs it: 48 photos at 4000x3000, command start -> done (start-up in log)
step process 150 bash -c "
  [ -f /tmp/bench48/manifest.csv ] || $PY -m pipeline.cli synth /tmp/bench48 --seed 7 --subjects 16 --days 0,7,14 --jobs 16 --force >/dev/null
  time $PY -m pipeline.cli process /tmp/bench48 --out /tmp/bench48-out --jobs 16 --no-progress"
echo "total $(( $(date +%s) - T0 ))s" | tee -a "$OUT/summary.txt"
