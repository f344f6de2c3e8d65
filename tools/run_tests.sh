#!/usr/bin/env bash
# The test command: install what is missing into .venv/, then run the suite.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/tools/setup_env.sh"
cd "$root"
exec .venv/bin/python -m pytest tests "$@"
