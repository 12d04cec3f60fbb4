#!/usr/bin/env bash
# Create ./.venv and install SLM Forest with the right PyTorch build for this machine.
#   bash scripts/setup.sh         # the CLI
#   bash scripts/setup.sh --dev   # the CLI + test tools
# Why a script: a bare `pip install torch` (or anything that pulls torch, like trl) on a GPU-less machine downloads a
# multi-GB CUDA build. So torch is installed first, explicitly: the CUDA build where nvidia-smi sees a GPU, the CPU
# build otherwise. With torch already present, `pip install -e .` (which asks for torch>=2.6) installs nothing more.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${VENV:-.venv}"
extras=""
[[ "${1:-}" == "--dev" ]] && extras="[dev]"

[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
pip=("$venv/bin/python" -m pip install --disable-pip-version-check -q)

if "$venv/bin/python" -c "import torch" 2>/dev/null; then
  echo "torch already installed: $("$venv/bin/python" -c 'import torch; print(torch.__version__)')"
elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  echo "GPU found: installing the CUDA build of torch"
  "${pip[@]}" "torch>=2.6"
else
  # CPU build. TORCH_CPU_INDEX lets a machine point at PyTorch's CPU wheel index
  # (e.g. https://download.pytorch.org/whl/cpu); here the pinned version resolves from a local wheel.
  echo "no GPU: installing the CPU build of torch ${TORCH_CPU_VERSION:-2.13.0}"
  "${pip[@]}" "torch==${TORCH_CPU_VERSION:-2.13.0}" ${TORCH_CPU_INDEX:+--index-url "$TORCH_CPU_INDEX"}
fi

"${pip[@]}" -e ".${extras}"
echo "installed: $("$venv/bin/slm" --help >/dev/null && echo "$venv/bin/slm")"
