#!/usr/bin/env bash
# Checks the formatting, builds everything and runs the test suite; then runs the kernel tests again with each SIMD width
# switched off, so the Vector512, Vector256 and scalar paths are all exercised on one machine. Ends with one line:
# "tests: N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
config=Release
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# Whitespace as .editorconfig describes it, checked before anything is built; `dotnet format whitespace AttentionSharp.slnx`
# fixes what it reports. Code style and analyzer rules are checked by the build itself (EnforceCodeStyleInBuild).
dotnet format whitespace AttentionSharp.slnx --verify-no-changes -v quiet || { echo "tests: 0 passed, 1 failed (format)"; exit 1; }
dotnet build AttentionSharp.slnx -c "$config" -nologo -v quiet -clp:ErrorsOnly || { echo "tests: 0 passed, 1 failed (build)"; exit 1; }

status=0
run() { # run LABEL [ENV=VALUE ...] -- dotnet test arguments
    local label=$1; shift
    local envs=()
    while [ "$1" != "--" ]; do envs+=("$1"); shift; done; shift
    echo "== $label"
    env "${envs[@]}" dotnet test tests/AttentionSharp.Tests -c "$config" --no-build -nologo "$@" 2>&1 | tee -a "$log" | grep -E "^(Passed!|Failed!)|\[FAIL\]|Error Message|Assert" || true
    [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
}

run "all tests" -- 
# .NET 10 reads DOTNET_EnableAVX512 for the Vector512 path; the older AVX512F switch is set too for older runtimes.
run "kernels without AVX-512" DOTNET_EnableAVX512F=0 DOTNET_EnableAVX512=0 -- --filter Category=Kernels
run "kernels without AVX2" DOTNET_EnableAVX2=0 -- --filter Category=Kernels
run "kernels without SIMD" DOTNET_EnableHWIntrinsic=0 -- --filter Category=Kernels

passed=$(grep -oE "Passed: +[0-9]+" "$log" | awk '{s+=$2} END {print s+0}')
failed=$(grep -oE "Failed: +[0-9]+" "$log" | awk '{s+=$2} END {print s+0}')
[ "$failed" -eq 0 ] || status=1
echo "tests: $passed passed, $failed failed"
exit $status
