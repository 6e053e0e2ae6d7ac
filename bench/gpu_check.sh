#!/usr/bin/env bash
# Every GPU-only check and benchmark, one line each: PASS, FAIL or SKIP, in under 8 minutes on one GPU.
#
#     bench/gpu_check.sh [PYTHON]        (default: .venv/bin/python, else python3)
#
# Each check runs in its own process under a time limit (the limits add up to 475 s); a check that
# runs out of time is a FAIL. Without a GPU every check prints SKIP and the script exits 0. The exit
# status is the number of failed checks.
set -u
cd "$(dirname "$0")/.."
PY=${1:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

failed=0
run() {  # run NAME SECONDS
  local out line
  out=$(timeout "$2" "$PY" bench/gpu_check.py "$1" 2>&1)
  local rc=$?
  line=$(printf '%s\n' "$out" | grep -E '^(PASS|FAIL|SKIP) ' | tail -1)
  if [ "$rc" -eq 124 ]; then
    line="FAIL $1: did not finish in $2 s"
  elif [ -z "$line" ]; then
    line="FAIL $1: exit $rc: $(printf '%s\n' "$out" | tail -1)"
  fi
  echo "$line"
  case "$line" in FAIL*) failed=$((failed + 1)) ;; esac
}

start=$(date +%s)
run bf16 45                 # FSDP2 mixed precision: bf16 params, fp32 reductions, against fp32
run compile 80              # torch.compile per block against eager
run fsdp_nccl 40            # FSDP2 over NCCL (a world of one GPU)
run grouped_mm 40           # F.grouped_mm experts against the per-expert loop, no host syncs
run flex_masking 60         # FlexAttention document masking against the SDPA boolean mask
run throughput_small 60     # tokens/s and MFU of `small`, synthetic tokens
run throughput_largest 150  # tokens/s and MFU of the largest preset the memory plan fits on this GPU
echo "gpu_check: $failed failed, $(( $(date +%s) - start )) s"
exit "$failed"
