#!/usr/bin/env bash
# Set up everything Style Studio needs, idempotently: second runs skip what is done.
#   scripts/setup.sh run   -> venv, torch, requirements
#   scripts/setup.sh test  -> the same plus test tools and Debian's chromium
# Torch comes first and an installed torch is kept (a GPU user brings their own CUDA
# build): a bare torch requirement would otherwise pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-run}"
python="${PYTHON:-python3}"
venv=".venv"
torch_version="${TORCH_VERSION:-2.13.0}"

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "Style Studio needs Python 3.10 or newer (found: $("$python" --version 2>&1))." >&2
  exit 1
fi

if [ ! -x "$venv/bin/python" ]; then
  say "creating $venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip
fi
pip=("$venv/bin/python" -m pip install -q)

if "$venv/bin/python" -c 'import torch' 2>/dev/null; then
  say "keeping torch $("$venv/bin/python" -c 'import torch; print(torch.__version__)')"
else
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    say "NVIDIA GPU found: installing torch $torch_version (CUDA build)"
    "${pip[@]}" "torch==$torch_version"
  else
    say "no NVIDIA GPU: installing torch $torch_version (CPU build)"
    # TORCH_INDEX_URL may name PyTorch's CPU wheel index to skip the CUDA download.
    "${pip[@]}" "torch==$torch_version" ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
  fi
fi

reqs="requirements.txt"
[ "$mode" = "test" ] && reqs="requirements-dev.txt"
stamp="$venv/.installed-$(basename "$reqs" .txt)"
want="$(cat requirements.txt "$reqs" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "installing $reqs"
  "${pip[@]}" -r "$reqs"
  echo "$want" > "$stamp"
else
  say "requirements already installed"
fi

# The `style-studio` command: this checkout, editable, its dependencies being the above.
if [ ! -x "$venv/bin/style-studio" ]; then
  say "installing the style-studio command"
  "${pip[@]}" --no-deps -e .
fi

if [ "$mode" = "test" ] && [ -z "${STYLE_STUDIO_CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then
  say "installing Debian's chromium for the browser tests"
  sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq chromium >/dev/null
fi
say "ready"
