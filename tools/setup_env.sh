#!/usr/bin/env bash
# Create .venv/ with the pinned stack, installing only what is missing.
#
# mmcv 2.1.0 (the newest mmdet 3.3.0 accepts) publishes no wheel: it is taken from
# $PRUNEDET_WHEELS (or ../shared/wheels) when a wheel built for this torch is there,
# and otherwise built from source with its C++ standard raised to C++20, which
# torch 2.14's headers require.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="$root/.venv"
py="$venv/bin/python"
stamp="$venv/.prunedet-installed"

if [[ -f "$stamp" ]] && cmp -s "$stamp" <(cat requirements.txt pyproject.toml tools/setup_env.sh); then
  exit 0
fi

[[ -x "$py" ]] || python3 -m venv "$venv"
# every install obeys the pins (torch would otherwise pull a setuptools
# without pkg_resources, which mmcv's setup.py and mmdet need)
pip=("$py" -m pip install --disable-pip-version-check -q -c "$root/requirements.txt")
export PIP_NO_WARN_SCRIPT_LOCATION=1
"${pip[@]}" "setuptools<82" wheel ninja

pin() { grep -E "^$1(==|<|>)" requirements.txt | head -n1; }

# 1. torch + torchvision from PyPI as a matching pair.
"${pip[@]}" "$(pin torch)" "$(pin torchvision)"

# 2. mmcv (full, with ops).
if ! "$py" -c "import mmcv, mmcv.ops" 2>/dev/null; then
  wheels="${PRUNEDET_WHEELS:-$root/../shared/wheels}"
  whl=""
  if [[ -d "$wheels" ]]; then
    tag="$("$py" -c 'import sys; print("cp%d%d" % sys.version_info[:2])')"
    whl="$(ls "$wheels"/mmcv-2.1.0-$tag-$tag-linux_x86_64.whl 2>/dev/null | head -n1 || true)"
    if [[ -n "$whl" && -f "$wheels/SHA256SUMS" ]]; then
      (cd "$wheels" && sha256sum --quiet -c SHA256SUMS) || { echo "setup: checksum mismatch in $wheels, building mmcv instead" >&2; whl=""; }
    fi
  fi
  if [[ -n "$whl" ]]; then
    echo "setup: installing mmcv from $whl"
    "${pip[@]}" --no-deps "$whl"
  else
    echo "setup: building mmcv 2.1.0 from source (about 10 minutes on 2 cores)"
    build="$(mktemp -d)"
    "$py" -m pip download -q --no-deps --no-build-isolation --no-binary :all: \
      mmcv==2.1.0 -d "$build"
    tar -xzf "$build"/mmcv-2.1.0.tar.gz -C "$build"
    sed -i 's/-std=c++17/-std=c++20/g' "$build/mmcv-2.1.0/setup.py"
    MAX_JOBS="${MAX_JOBS:-$(nproc)}" "$py" -m pip wheel -q --no-build-isolation --no-deps \
      "$build/mmcv-2.1.0" -w "$build/wheelhouse"
    "${pip[@]}" --no-deps "$build"/wheelhouse/mmcv-*.whl
    rm -rf "$build"
  fi
fi

# 3. Everything else, plus prunedet itself (editable).
"${pip[@]}" -r requirements.txt -e "$root"
"$py" -c "import torch, torchvision, mmcv.ops, mmdet, mmpretrain, torch_pruning, prunedet" \
  || { echo "setup: the environment does not import; see the errors above" >&2; exit 1; }
cat requirements.txt pyproject.toml tools/setup_env.sh > "$stamp"
