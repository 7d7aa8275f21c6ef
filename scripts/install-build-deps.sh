#!/usr/bin/env bash
# Installs what building voxflow needs beyond Rust, when missing: a C/C++ compiler, cmake and nasm (CharLS
# for JPEG-LS and libjpeg-turbo for 12-bit JPEG are built from source by their -sys crates). Uses apt-get
# on Debian/Ubuntu (as root, or through sudo); elsewhere it says what to install.
set -euo pipefail
missing=()
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v nasm >/dev/null 2>&1 || missing+=(nasm)
command -v g++ >/dev/null 2>&1 || missing+=(g++)
[ ${#missing[@]} -eq 0 ] && exit 0
if command -v apt-get >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
else
  echo "voxflow needs these build tools: ${missing[*]}; install them with your package manager" >&2
  exit 1
fi
