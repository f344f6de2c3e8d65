#!/usr/bin/env bash
# Train on N processes (GPUs, or CPU processes with gloo) with mmengine's
# pytorch launcher, as in mmdet/mmpretrain:
#   tools/dist_train.sh CONFIG N [train.py options]
# NNODES, NODE_RANK, MASTER_ADDR and PORT configure several machines.
set -euo pipefail
if [[ $# -lt 2 ]]; then
  echo "usage: $0 CONFIG NUM_PROCESSES [tools/train.py options]" >&2
  exit 2
fi
config=$1
procs=$2
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="$root/.venv/bin/python"
[[ -x $py ]] || py=python
PYTHONPATH="$root:${PYTHONPATH:-}" exec "$py" -m torch.distributed.run \
  --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
  --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${PORT:-29500}" \
  --nproc_per_node="$procs" \
  "$root/tools/train.py" "$config" --launcher pytorch "${@:3}"
