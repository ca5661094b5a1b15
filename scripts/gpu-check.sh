#!/usr/bin/env bash
# Runs on a machine with an NVIDIA GPU, from the unpacked pack of scripts/gpu-publish.sh (it needs no .NET, only the
# driver; the peer needs python3 with a CUDA build of PyTorch):
#   (a) attn bench gpu-check             the GPU GPT, the library's Gpt on device tensors and the recurrent classifiers
#                                        against the CPU engine on the GPU
#   (b) attn bench gemm --device cuda    SGEMM GFLOP/s and share of the FP32 peak, C = A·B and C = A·Bᵀ
#   (c) attn bench train --device cuda   training step ms, tokens/s and MFU, GPT-2 124M at B = 16, T = 1024 included;
#                                        the same step through autograd on device tensors beside it ("autograd ms")
#   (d) torch_gpt_step.py                the same GPT-2 124M step in PyTorch (eager, fp32, TF32 off), same FLOPs and peak
#   (e) attn compare --device cuda       the parallelism experiment on the GPU: RNN, LSTM, GRU and Transformer step
#       --parallelism-only               time and tokens/s at T = 64 … 4096 (batch 8), into compare/report.md
# Usage: ./gpu-check.sh [OUT_DIR]   (default gpu-results); every result is a JSON file there, the console a log.
# Exit code: 0 when every part ran and the check passed, else the number of parts that failed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
attn=${ATTN:-$here/attn/attn}
out=${1:-gpu-results}
mkdir -p "$out"
failed=0
step() { # step NAME COMMAND...: runs it, logs it, counts a failure
    local name=$1; shift
    echo "== $name: $*"
    "$@" 2>&1 | tee "$out/$name.log"
    local code=${PIPESTATUS[0]}
    [ "$code" -eq 0 ] || { echo "== $name failed (exit $code)"; failed=$((failed + 1)); }
    return "$code"
}

if [ ! -x "$attn" ]; then
    echo "error: $attn is missing; run this from the pack that scripts/gpu-publish.sh builds (or set ATTN)." >&2
    exit 100
fi
# Without a GPU the first command says why in one sentence; nothing else can run then.
step gpu-check "$attn" bench gpu-check --json "$out/gpu-check.json"
[ $? -eq 3 ] && exit 1
step gemm "$attn" bench gemm --device cuda --json "$out/gemm.json"
step gemm-linear "$attn" bench gemm --device cuda --transpose-b --json "$out/gemm-linear.json"
step train "$attn" bench train --device cuda --json "$out/train.json"

# The peer uses the same FP32 peak as attn (multiprocessors × clock × 128 × 2, from the CUDA driver), read from its report.
peak=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['peak_gflops'] or '')" "$out/train.json" 2>/dev/null)
step torch python3 "$here/torch_gpt_step.py" ${peak:+--peak-gflops "$peak"} --json "$out/torch.json"
# About 16 000 kernel launches per recurrent training step at T = 4096, 6 steps per length (an estimate: under 2 min).
step compare "$attn" compare --device cuda --parallelism-only --out "$out/compare"

echo "== results in $out: $(ls "$out" | tr '\n' ' ')"
exit $failed
