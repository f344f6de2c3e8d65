#!/usr/bin/env bash
# Fashion-MNIST (complete, MIT licence) from Debian's dataset-fashion-mnist
# package, unpacked where configs/_base_/datasets/fashion_mnist.py looks.
#   tools/data/prepare_fashion_mnist.sh [data/fashion_mnist]
set -euo pipefail
out="${1:-data/fashion_mnist}"
src=/usr/share/datasets/fashion-mnist
if [[ ! -d $src ]]; then
  echo "installing Debian's dataset-fashion-mnist (needs root)" >&2
  apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist
fi
mkdir -p "$out"
for f in train-images-idx3-ubyte train-labels-idx1-ubyte \
         t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  [[ -f $out/$f ]] || gunzip -c "$src/$f.gz" > "$out/$f"
done
echo "Fashion-MNIST ready in $out"
