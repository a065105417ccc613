#!/usr/bin/env bash
# Installs what callgate needs to build and test, from Debian 12's packages.
# Idempotent: when every package is already present it does nothing (no apt-get update).
# Boost: only the three -dev packages callgate uses (Asio/Beast headers, JSON, URL) instead of
# libboost1.81-all-dev, which drags in ~100 packages (MPI, Python, ...) for nothing.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config
  g++ clang clang-format clang-tidy
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libssl-dev libsqlite3-dev libspdlog-dev libcli11-dev
  libgtest-dev libgmock-dev
  openssl
  libespeak-ng-dev espeak-ng-data libspeexdsp-dev libsndfile1-dev portaudio19-dev
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -q
"${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
