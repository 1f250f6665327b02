#!/usr/bin/env bash
# Installs what Colossal needs on Debian 12 and is quick when everything is
# already there. Debian packages come from apt; Python packages go into a
# virtual environment at .venv (built on Debian's python3 so that Debian's
# python3-torch is visible to it).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

apt_pkgs=(
  build-essential cmake ninja-build ccache git pkg-config
  llvm-19-dev libmlir-19-dev mlir-19-tools llvm-19-tools clang-19 libclang-rt-19-dev
  libonnx-dev libprotobuf-dev protobuf-compiler
  coinor-libcbc-dev libopenblas-dev libopenblas0-pthread
  libopenmpi-dev openmpi-bin libgloo-dev libgtest-dev nlohmann-json3-dev
  python3 python3-venv python3-torch python3-torchvision
)
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

venv="$root/.venv"
if [ ! -x "$venv/bin/python" ]; then
  echo "setup: creating $venv"
  /usr/bin/python3 -m venv --system-site-packages "$venv"
fi
py_reqs="$root/scripts/requirements.txt"
stamp="$venv/.requirements.stamp"
if [ ! -f "$stamp" ] || ! cmp -s "$py_reqs" "$stamp"; then
  echo "setup: installing Python packages from $py_reqs"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$py_reqs"
  cp "$py_reqs" "$stamp"
fi
