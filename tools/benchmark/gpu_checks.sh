#!/usr/bin/env bash
# Everything that needs a GPU, in one go (a lent GPU machine's time is short):
# the benchmark suite at full sizes, then the CUDA-only tests (AMP through
# every stage, ECE math under autocast, the demo on CUDA).
#
#   bash tools/benchmark/gpu_checks.sh OUT_DIR [PYTHON]
#
# OUT_DIR gets env.txt, the benchmark JSON, bench.log, profiles of the bf16
# step, the loss and one pseudo-label pass (<section>_profile.txt) and
# cuda_tests.log (and model_zoo.log, suite.log: see the end).
# Each part has its own time limit (BENCH_TIMEOUT, TEST_TIMEOUT seconds), so
# a hang in one still leaves the other's results.
set -u
out=${1:?usage: gpu_checks.sh OUT_DIR [PYTHON]}
py=${2:-python}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
{
    nvidia-smi -L
    $py -c 'import torch, numpy, mmcv, mmengine, mmseg
print("torch", torch.__version__, "cuda", torch.version.cuda,
      "numpy", numpy.__version__, "mmcv", mmcv.__version__,
      "mmengine", mmengine.__version__, "mmseg", mmseg.__version__)'
} > "$out/env.txt" 2>&1
cat "$out/env.txt"

# the fused loss kernels first: a broken kernel shows before it is timed
timeout 120 $py -m pytest -q -p no:cacheprovider \
    tests/integration/test_cuda.py -k fused 2>&1 | tail -n 5

start=$SECONDS
timeout "${BENCH_TIMEOUT:-300}" $py tools/benchmark/run_all.py \
    --out-dir "$out" --profile > "$out/bench.log" 2>&1
echo "benchmark: exit $? after $((SECONDS - start)) s"
tail -n 12 "$out/bench.log"

start=$SECONDS
timeout "${TEST_TIMEOUT:-240}" $py -m pytest -q -rs -p no:cacheprovider \
    tests/integration/test_cuda.py > "$out/cuda_tests.log" 2>&1
echo "CUDA tests: exit $? after $((SECONDS - start)) s"
tail -n 40 "$out/cuda_tests.log"

# Optionally the model-zoo matrix (11 MMSeg networks, three stages each)
# with every stage under bf16 AMP: ZOO_TIMEOUT=seconds.
if [ -n "${ZOO_TIMEOUT:-}" ]; then
    start=$SECONDS
    CALSFDA_TEST_AMP=bfloat16 timeout "$ZOO_TIMEOUT" $py -m pytest -q \
        -p no:cacheprovider tests/integration/test_model_zoo.py \
        > "$out/model_zoo.log" 2>&1
    echo "model-zoo matrix (bf16 AMP): exit $? after $((SECONDS - start)) s"
    grep -E "^(FAILED|ERROR)|passed|failed" "$out/model_zoo.log" | tail -n 15
fi

# Optionally the whole suite on this machine (its torch/numpy, models on
# CUDA): SUITE_TIMEOUT=seconds, run with pytest-xdist if it is installed.
if [ -n "${SUITE_TIMEOUT:-}" ]; then
    start=$SECONDS
    timeout "$SUITE_TIMEOUT" $py -m pytest -q -p no:cacheprovider \
        ${SUITE_ARGS:--n 8} tests --ignore tests/integration/test_cuda.py \
        > "$out/suite.log" 2>&1
    echo "test suite: exit $? after $((SECONDS - start)) s"
    grep -E "^(FAILED|ERROR)|passed|failed" "$out/suite.log" | tail -n 30
fi
