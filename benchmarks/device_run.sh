#!/usr/bin/env bash
# The GPU benchmark, prepared for one call on a lent GPU machine that has no
# package registry (JAX with CUDA, flax, optax, scipy and PyTorch installed).
#
#   bash benchmarks/device_run.sh fetch   # here, where pip reaches a registry:
#                                         # the peers' wheels into .whl/ (git-ignored)
#   bash benchmarks/device_run.sh run     # there, from a copy of the clone with
#                                         # .whl/ carried along
#
# "run" installs the peers that such a machine lacks (POT, ott-jax with
# jaxopt, prdc) from the wheels and this package without its dependencies,
# then runs `python -m benchmarks --device gpu` with the cases of the GPU
# goals first (wasserstein_1d, sliced_wasserstein, the train step) and a time
# budget (BUDGET seconds, default 360), so that a call limited to 10 minutes
# ends with gpu.json and gpu.md written (DEVICE=cpu tries the script on a CPU). They go to $OUT where it is set (the
# device tool's folder of files to bring back), else to benchmarks/results.
set -euo pipefail
cd "$(dirname "$0")/.."

WHEELS=.whl
PEERS=(POT==0.9.7.post1 ott-jax==0.6.0 jaxopt==0.8.5 prdc==0.2)

case "${1:-}" in
fetch)
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d "$WHEELS" "${PEERS[@]}"
    ;;
run)
    out="${OUT:-benchmarks/results}"
    mkdir -p "$out"
    if compgen -G "$WHEELS/*.whl" >/dev/null; then
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target /tmp/benchmark-peers "$WHEELS"/*.whl
        export PYTHONPATH="/tmp/benchmark-peers${PYTHONPATH:+:$PYTHONPATH}"
    else
        echo "device_run.sh: no wheels in $WHEELS/ (run 'fetch' first): the missing peers are reported as such" >&2
    fi
    python3 -m pip install -q --no-deps --no-build-isolation -e .
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
    PYTHONUNBUFFERED=1 python3 -m benchmarks --device "${DEVICE:-gpu}" --first wasserstein --first train_step \
        --budget "${BUDGET:-360}" --slow-peer 5 --out "$out" 2>&1 | tee "$out/log.txt"
    ;;
*)
    echo "usage: bash benchmarks/device_run.sh fetch|run" >&2
    exit 2
    ;;
esac
