#!/usr/bin/env bash
# Simulated nvidia-smi of the gpu_sim scenario (installed as /usr/bin/nvidia-smi
# on its test host only): the answers of one NVIDIA A10G on driver 565.57.01
# (CUDA 12.7), the GPU the users' hosts have. There is no GPU, no kernel
# module and no driver library behind it: what reads only nvidia-smi sees an
# A10G host; anything that uses the GPU must fail.
#   nvidia-smi --query-gpu=FIELD,... --format=csv,noheader,nounits
#   nvidia-smi                       (the header, a real 565.57.01 A10G output)
set -u
declare -A value=(
  [index]=0
  [name]="NVIDIA A10G"
  [uuid]=GPU-3f8b2a1c-6d4e-9f7a-b2c5-8e1d0a4f6b93
  [memory.total]=23028
  [memory.used]=1
  [driver_version]=565.57.01
  [compute_cap]=8.6
)
query="" format=""
for arg in "$@"; do
  case "$arg" in
    --query-gpu=*) query=${arg#--query-gpu=} ;;
    --format=*) format=${arg#--format=} ;;
    *) echo "Invalid combination of input arguments. Please run 'nvidia-smi -h' for help."; exit 2 ;;
  esac
done
if [[ -n "$query" ]]; then
  [[ "$format" == csv,noheader,nounits ]] || { echo "simulated nvidia-smi: only --format=csv,noheader,nounits"; exit 2; }
  IFS=, read -ra fields <<<"$query"
  out=()
  for f in "${fields[@]}"; do
    [[ -n "${value[$f]+set}" ]] || { echo "Field \"$f\" is not a valid field to query."; exit 2; }
    out+=("${value[$f]}")
  done
  line=$(IFS=,; echo "${out[*]}")
  echo "${line//,/, }"
  exit 0
fi
cat /usr/share/labforge-gpu-sim/nvidia-smi.txt
