#!/usr/bin/env bash
# Builds the GPU check pack: a self-contained attn for linux-x64 (no .NET needed where it runs), scripts/gpu-check.sh
# and the PyTorch peer bench/torch_gpt_step.py, as one tar.gz that must stay under 64 MiB.
# Usage: scripts/gpu-publish.sh [OUT_DIR]   (default artifacts/gpu-pack; writes OUT_DIR.tar.gz beside it)
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
out=${1:-artifacts/gpu-pack}
limit=$((64 * 1024 * 1024))

rm -rf "$out"
mkdir -p "$out"
dotnet publish src/AttentionSharp.Cli -c Release -r linux-x64 --self-contained -p:DebugType=none -o "$out/attn" -v quiet -nologo
# The runtime's debugger and crash-dump helpers are not needed to run.
rm -f "$out"/attn/*.pdb "$out/attn/libmscordaccore.so" "$out/attn/libmscordbi.so" "$out/attn/createdump"
cp scripts/gpu-check.sh bench/torch_gpt_step.py "$out/"
tar -czf "$out.tar.gz" -C "$(dirname "$out")" "$(basename "$out")"
size=$(stat -c %s "$out.tar.gz")
echo "pack: $out.tar.gz, $((size / 1024 / 1024)) MiB ($(du -sh "$out" | cut -f1) unpacked)"
if [ "$size" -ge "$limit" ]; then
    echo "error: the pack is $size bytes, over the 64 MiB limit." >&2
    exit 1
fi
