#!/usr/bin/env bash
# Train one SLM Forest config on a RunPod GPU pod, in a way that survives a pod restart.
#
#   bash scripts/runpod_train.sh configs/gemma-3-12b-qlora.yaml                    # check, plan, train, evaluate
#   bash scripts/runpod_train.sh configs/phi-2-lora.yaml --set train.max_steps=30  # --set goes to every slm command
#   bash scripts/runpod_train.sh --stop-pod configs/phi-2-lora.yaml                # stop the pod (and its billing) at the end
#   bash scripts/runpod_train.sh --dry-run configs/phi-2-lora.yaml                 # print every command, list problems
#   bash scripts/runpod_train.sh --reinforce configs/gemma-3-4b-qlora.yaml         # GRPO after training (slm reinforce)
#
# Run it from a clone under /workspace (git clone … /workspace/slm-forest-src), inside tmux so that a dropped SSH
# session does not matter. Training itself runs under nohup and survives the session either way.
# After a pod restart, run the same command again: every finished stage is skipped, training resumes from the last
# checkpoint in /workspace, and a training that is still running (the SSH session dropped) is waited for, not doubled.
# --dry-run runs nothing that writes or downloads; it checks what it can here (GPU and its memory against the plan, disk,
# HF_TOKEN for a gated model, the config, the teacher's key when the dataset is not built) and ends with the list of
# problems the real run would hit, exiting 1 when there is any.
# Reinforcement (GRPO on calculation questions, `slm reinforce`) runs after training with --reinforce or when the config
# says reinforce.enabled: true; evaluate then scores base, SFT and RL, and export merges the RL adapter.
#
# Environment (secrets are read from the environment by the tools themselves; this script never prints them):
#   HF_TOKEN           Hugging Face token; needed for gated models (Gemma 3: accept its licence on the Hub first)
#   OPENAI_API_KEY     the distill teacher, only if the dataset is not built yet
#   LAWGO_OC           law.go.kr Open API, only if the config collects from it
#   WORKSPACE          the persistent volume (default /workspace)
#   MIN_FREE_GB        free disk required on WORKSPACE (default 60: a 12B download, checkpoints, a merged export)
#   GPUS               number of GPUs to use (default: every GPU nvidia-smi lists; 1 in --dry-run)
#   ACCELERATE_CONFIG  launcher config when GPUS > 1 (default fine_tuning/train/accelerate_configs/ddp.yaml;
#                      fine_tuning/train/accelerate_configs/fsdp_qlora.yaml shards a QLoRA model across the GPUs)
#   STOP_POD=1         same as --stop-pod (uses RUNPOD_POD_ID, which RunPod sets in every pod)
#   SKIP_EVALUATE=1    stop after training (no `slm evaluate` on the rented GPU)
set -euo pipefail

usage() {
  sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# ---------------------------------------------------------------------------------------------------- arguments
DRY_RUN=0
STOP_POD="${STOP_POD:-0}"
REINFORCE=0
CONFIG=""
SETS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --stop-pod) STOP_POD=1 ;;
    --reinforce) REINFORCE=1 ;;
    --set) [[ $# -ge 2 ]] || usage; SETS+=(--set "$2"); shift ;;
    --set=*) SETS+=(--set "${1#--set=}") ;;
    -h|--help) usage ;;
    -*) echo "unknown option: $1" >&2; usage ;;
    *) [[ -z "$CONFIG" ]] || usage; CONFIG="$1" ;;
  esac
  shift
done
[[ -n "$CONFIG" ]] || usage
[[ -f "$CONFIG" ]] || { echo "error: config not found: $CONFIG" >&2; exit 2; }

# A problem stops a real run at once (exit 1, before anything is installed or downloaded); a dry run collects them
# all and lists them at the end, so one dry run shows everything to fix.
PROBLEMS=()
problem() {
  if [[ "$DRY_RUN" == 1 ]]; then
    PROBLEMS+=("$1")
    echo "problem: $1" >&2
  else
    echo "error: $1" >&2
    exit 1
  fi
}
# Checked now, not after hours of training: stopping the pod needs the pod id RunPod sets in every pod.
if [[ "$STOP_POD" == 1 && -z "${RUNPOD_POD_ID:-}" ]]; then
  [[ "$DRY_RUN" == 1 ]] || {
    echo "error: --stop-pod needs RUNPOD_POD_ID (set by RunPod in every pod); export it or drop --stop-pod" >&2
    exit 2
  }
  problem "--stop-pod needs RUNPOD_POD_ID (set by RunPod in every pod); export it or drop --stop-pod"
fi

# Every command goes through `run`: printed first (so the log shows what happened), executed unless --dry-run.
# `show` prints a command as it could be pasted into a shell (arguments with spaces or quotes in single quotes).
show() {
  local arg sep=""
  for arg in "$@"; do
    if [[ "$arg" =~ ^[A-Za-z0-9_./:=,+@%-]+$ ]]; then printf '%s%s' "$sep" "$arg"
    else printf "%s'%s'" "$sep" "${arg//\'/\'\\\'\'}"
    fi
    sep=" "
  done
}
run() {
  printf '+ %s\n' "$(show "$@")"
  [[ "$DRY_RUN" == 1 ]] || "$@"
}
step() { printf '\n== %s\n' "$*"; }
# Environment for this script and everything it starts (also in --dry-run: setting a variable runs nothing).
setenv() {
  printf '+ export %s=%q\n' "$1" "$2"
  export "$1=$2"
}

# Commands run from the repository root, so the paths below (scripts/, fine_tuning/, configs/) are the ones in the docs.
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONFIG="$(cd "$(dirname "$CONFIG")" && pwd)/$(basename "$CONFIG")"
CONFIG="${CONFIG#"$REPO"/}"
cd "$REPO"

# The run's name names its directories and logs: from `--set run_name=…`, else the config's run_name, else the file name.
RUN_NAME="$(sed -n 's/^run_name:[[:space:]]*\([A-Za-z0-9._-]*\).*/\1/p' "$CONFIG" | head -n 1)"
for arg in "${SETS[@]+"${SETS[@]}"}"; do
  [[ "$arg" == run_name=* ]] && RUN_NAME="${arg#run_name=}"
done
RUN_NAME="${RUN_NAME:-$(basename "$CONFIG" .yaml)}"

# ------------------------------------------------------------------------------------- 1. the GPU is there and usable
# Why: a pod started from the wrong template (or a CPU pod) would install, download and then fail after minutes of billing.
# nvidia-smi lists the GPUs the container can see; each becomes one training process.
# Reading the GPU list changes nothing, so the dry run reads it too: its first GPU's memory is checked against the plan.
step "1. GPU"
GPU_NAME=""
GPU_MIB=""
printf '+ %s\n' "nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader"
if ! command -v nvidia-smi >/dev/null 2>&1; then
  problem "nvidia-smi not found: this is not a GPU pod (start the pod from a GPU template)"
  GPUS="${GPUS:-1}"
else
  nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader || true
  IFS=, read -r _ GPU_NAME GPU_MIB < <(nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader,nounits \
    2>/dev/null | head -n 1) || true
  GPU_NAME="${GPU_NAME# }"
  GPU_MIB="$(printf '%s' "$GPU_MIB" | tr -dc '0-9')"
  GPUS="${GPUS:-$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)}"
  [[ "$GPUS" -ge 1 ]] || problem "nvidia-smi lists no GPU"
fi
echo "using $GPUS GPU(s)${GPU_NAME:+ ($GPU_NAME, ${GPU_MIB} MiB)}"

# ------------------------------------------------------------------------------- 2. enough disk on the persistent volume
# Why: only $WORKSPACE survives a pod restart, and the container disk is small (often 20 GB). The base model download
# (24 GB for Gemma 3 12B in bf16), the checkpoints and a merged export all go to $WORKSPACE; running out of space
# half-way through a checkpoint write loses hours.
WORKSPACE="${WORKSPACE:-/workspace}"
MIN_FREE_GB="${MIN_FREE_GB:-60}"
step "2. disk: at least ${MIN_FREE_GB} GB free on $WORKSPACE"
printf '+ %s\n' "$(show df -h "$WORKSPACE" /)"
if [[ ! -d "$WORKSPACE" ]]; then
  problem "$WORKSPACE does not exist: attach a volume (or set WORKSPACE)"
else
  df -h "$WORKSPACE" / || true
  free_gb="$(df -BG --output=avail "$WORKSPACE" | tail -n 1 | tr -dc '0-9')"
  if [[ "$free_gb" -lt "$MIN_FREE_GB" ]]; then
    problem "only ${free_gb} GB free on $WORKSPACE, need ${MIN_FREE_GB} GB: enlarge the volume or set MIN_FREE_GB"
  fi
fi

# ------------------------------------------------------------------------ 3. every cache, artifact and log under /workspace
# Why: after a restart everything outside $WORKSPACE is gone. With the Hugging Face cache, the venv, the run directory
# and the checkpoints there, a restarted pod skips the download, the install and the finished stages, and resumes.
step "3. caches, runs, checkpoints and logs under $WORKSPACE"
ROOT="$WORKSPACE/slm-forest"
VENV="$ROOT/venv"
RUNS_DIR="$ROOT/runs"
CHECKPOINTS="$ROOT/checkpoints/$RUN_NAME"
LOGS="$ROOT/logs"
TRAIN_LOG="$LOGS/$RUN_NAME-train.log"
TRAIN_PID="$LOGS/$RUN_NAME-train.pid"
setenv HF_HOME "$ROOT/hf"                  # models and datasets from the Hub (tens of GB)
setenv PIP_CACHE_DIR "$ROOT/cache/pip"     # wheels (torch alone is GBs): not on the small container disk
setenv HF_HUB_DISABLE_TELEMETRY 1
setenv TOKENIZERS_PARALLELISM false
run mkdir -p "$HF_HOME" "$PIP_CACHE_DIR" "$RUNS_DIR" "$CHECKPOINTS" "$LOGS"
# The same two overrides go to every slm command, so every command sees the same run directory.
SLM_SETS=(--set "runs_dir=$RUNS_DIR" --set "train.output_dir=$CHECKPOINTS" "${SETS[@]+"${SETS[@]}"}")
SLM="$VENV/bin/slm"
SET_VALUES=()  # the same overrides as KEY=VALUE, for the checks below that load the config in Python
for ((i = 1; i < ${#SLM_SETS[@]}; i += 2)); do SET_VALUES+=("${SLM_SETS[i]}"); done

# A Python that has SLM Forest: the volume's venv once step 4 ran, else this checkout's .venv or python3 (dry run).
check_python() {
  local py
  for py in "$VENV/bin/python" "$REPO/.venv/bin/python" python3; do
    if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import slm_forest' >/dev/null 2>&1; then
      echo "$py"
      return 0
    fi
  done
  return 1
}

# The checks a dry run can make without writing or downloading anything: the config validates; a dataset that is not
# built yet can be distilled (the teacher's key is set); the memory plan fits the GPU nvidia-smi reports (the check
# `slm train` makes before loading weights, so a dry run catches it before the install and the download).
dry_run_checks() {
  local py out
  if ! py="$(check_python)"; then
    echo "not checked here: the config and the memory plan (no Python with SLM Forest yet: step 4 installs it)"
    return 0
  fi
  if ! out="$("$py" -m slm_forest.cli config validate "$CONFIG" "${SLM_SETS[@]}" 2>&1)"; then
    problem "the config does not validate: $(printf '%s\n' "$out" | grep -m 1 '^error:' | sed 's/^error: //')"
    return 0
  fi
  if [[ ! -f "$RUNS_DIR/$RUN_NAME/build/manifest.json" ]]; then
    local missing
    missing="$(printf '%s\n' "$out" | sed -n 's/.*reads its key from \([A-Za-z0-9_]*\), which is not set.*/\1/p' | sort -u)"
    for key in $missing; do
      problem "the dataset is not built yet and the distill teacher reads its key from $key, which is not set: export $key=…"
    done
  fi
  if [[ "$REINFORCE" == 0 ]] && [[ "$("$py" -c "$CONFIG_FIELD" reinforce.enabled "$CONFIG" "${SET_VALUES[@]+"${SET_VALUES[@]}"}")" == True ]]; then
    REINFORCE=1
  fi
  [[ -n "$GPU_MIB" ]] || return 0
  if ! out="$("$py" -c "$MEMORY_CHECK" "$GPU_NAME" "$GPU_MIB" "$CONFIG" "${SET_VALUES[@]+"${SET_VALUES[@]}"}" 2>&1)"; then
    problem "the plan does not fit the GPU: $(printf '%s\n' "$out" | tail -n 1)"
  else
    echo "$out"
  fi
}
# One config value (a dotted key), as the CLI would load it with these overrides.
CONFIG_FIELD='import sys
from slm_forest.config import load_config
value = load_config(sys.argv[2], sys.argv[3:])
for part in sys.argv[1].split("."):
    value = getattr(value, part)
print(value)'
# The memory verdict `slm train` reaches on this GPU (fine_tuning.plan.cli.memory_verdict), before any download.
MEMORY_CHECK='import sys
from fine_tuning.plan.cli import memory_verdict
from slm_forest.config import load_config
from slm_forest.errors import SlmError
name, mib, config, *sets = sys.argv[1:]
cfg = load_config(config, sets)
if not cfg.plan.check_before_training:
    sys.exit(print("memory plan: not checked (plan.check_before_training: false)"))
try:
    print(memory_verdict(cfg, name, int(mib) / 1024))
except SlmError as exc:
    sys.exit(f"{exc.message} ({exc.hint})")'

# ------------------------------------------------------------------------------------- 4. install, keeping CUDA torch
# Why: RunPod's PyTorch images ship a CUDA build of torch. A venv with --system-site-packages sees it, so setup.sh
# keeps it instead of downloading another multi-GB wheel (setup.sh installs the CUDA build from PyPI where none is
# found, the CPU build where nvidia-smi sees no GPU). The venv lives on the volume: after a restart this is a no-op.
step "4. install SLM Forest into $VENV"
if [[ "$REPO" != "$WORKSPACE"/* ]]; then
  echo "warning: $REPO is outside $WORKSPACE: after a pod restart it is gone (clone the repository under $WORKSPACE)"
fi
if [[ "$DRY_RUN" == 1 || ! -x "$VENV/bin/python" ]]; then
  run python3 -m venv --system-site-packages "$VENV"
fi
run env VENV="$VENV" bash scripts/setup.sh
run "$VENV/bin/python" -c 'import torch; assert torch.cuda.is_available(), "torch sees no GPU"; print("torch", torch.__version__, "CUDA", torch.version.cuda)'

# ----------------------------------------------------------------------------------------- 5. Hugging Face credentials
# Why: Gemma 3 is gated; without a valid token the download fails after the pod is up. huggingface_hub reads HF_TOKEN
# from the environment for every download, so no token file is written to the shared volume and the token never
# appears on a command line or in a log. `hf auth whoami` proves it works (it prints the account name only).
step "5. Hugging Face login (HF_TOKEN from the environment)"
GATED=0
grep -Eq '^[[:space:]]*base_model:[[:space:]]*google/' "$CONFIG" && GATED=1
for arg in "${SETS[@]+"${SETS[@]}"}"; do
  [[ "$arg" == train.base_model=* ]] && { [[ "$arg" == train.base_model=google/* ]] && GATED=1 || GATED=0; }
done
if [[ -n "${HF_TOKEN:-}" ]]; then
  run "$VENV/bin/hf" auth whoami
elif [[ "$GATED" == 1 ]]; then
  problem "$CONFIG trains a gated Google model: export HF_TOKEN=… (after accepting the licence on the Hub)"
else
  echo "HF_TOKEN is not set: fine for public models"
fi

# ---------------------------------------------------------------------------------------------- 6. the config is valid
# Why: a typo found now costs a second; found by the trainer, it costs the model download.
step "6. validate $CONFIG"
run "$SLM" config validate "$CONFIG" "${SLM_SETS[@]}"
if [[ "$DRY_RUN" == 1 ]]; then
  dry_run_checks
elif [[ "$REINFORCE" == 0 ]] \
  && [[ "$("$VENV/bin/python" -c "$CONFIG_FIELD" reinforce.enabled "$CONFIG" "${SET_VALUES[@]+"${SET_VALUES[@]}"}")" == True ]]; then
  REINFORCE=1  # reinforce.enabled: true in the config
fi

# ------------------------------------------------------------------------------------------- 7. the dataset is built
# Why: training reads build/train.jsonl and val.jsonl. Stages that already finished (here, or on a laptop whose
# runs/$RUN_NAME/ was copied to $RUNS_DIR/) are skipped; otherwise they run now (distill needs OPENAI_API_KEY and is
# capped by distill.max_cost_usd).
step "7. data stages (collect → build; finished ones are skipped)"
run "$SLM" run "$CONFIG" --to build "${SLM_SETS[@]}"

# ------------------------------------------------------------------------------------------- 8. plan before spending
# Why: `slm plan` estimates peak memory, tokens, hours and dollars on each RunPod GPU type from the config and the
# built dataset, and what to change when a card is too small. `slm train` repeats the memory check on the GPU it
# finds and refuses to start (before any download) when the run will not fit: an out-of-memory error costs nothing.
step "8. plan"
run "$SLM" plan "$CONFIG" "${SLM_SETS[@]}"

# ---------------------------------------------------------------------------------- 9. train under nohup, resumable
# Why nohup: training takes hours; it must outlive the SSH session. Its output goes to a log on the volume
# (follow it with `tail -f`). Why no --resume: `slm train` itself continues from the newest complete checkpoint in
# $CHECKPOINTS (optimizer, scheduler and data position) when it was made with the same train config and data, and
# otherwise starts over, replacing them. --resume would turn any train-config change under the same run name into an
# error ("checkpoints … made with another train config"). A finished train stage is skipped.
# Several GPUs: one process per GPU through `accelerate launch` (DDP by default, FSDP with ACCELERATE_CONFIG).
step "9. train ($GPUS GPU(s)); log: $TRAIN_LOG"
if [[ "$GPUS" -gt 1 ]]; then
  ACCELERATE_CONFIG="${ACCELERATE_CONFIG:-fine_tuning/train/accelerate_configs/ddp.yaml}"
  TRAIN_CMD=("$VENV/bin/accelerate" launch --config_file "$ACCELERATE_CONFIG" --num_processes "$GPUS" -m slm_forest.cli train)
else
  TRAIN_CMD=("$SLM" train)
fi
TRAIN_CMD+=("$CONFIG" "${SLM_SETS[@]}")

# Say what `slm train` will do with the checkpoints on the volume (the same rule as fine_tuning/train/checkpoints.py:
# complete = trainer_state.json, written last, and the adapter are there).
resume_plan() {
  local dir step newest="" newest_step=-1 partial=()
  for dir in "$CHECKPOINTS"/checkpoint-*; do
    [[ -d "$dir" ]] || continue
    step="${dir##*/checkpoint-}"
    [[ "$step" =~ ^[0-9]+$ ]] || continue
    if [[ -f "$dir/trainer_state.json" && -f "$dir/adapter_config.json" && -f "$dir/adapter_model.safetensors" ]]; then
      if (( step > newest_step )); then newest="${dir##*/}"; newest_step="$step"; fi
    else
      partial+=("${dir##*/}")
    fi
  done
  for dir in "${partial[@]+"${partial[@]}"}"; do
    echo "resume: $dir is incomplete (a save was interrupted): slm train ignores it"
  done
  if [[ -z "$newest" ]]; then
    echo "resume: no complete checkpoint in $CHECKPOINTS: training starts at step 0"
  else
    echo "resume: slm train continues from $newest if it was made with this train config and data" \
      "(its slm_resume_key.json); otherwise it starts over and replaces the checkpoints"
  fi
}
resume_plan

train_pid=""
if [[ -f "$TRAIN_PID" ]] && kill -0 "$(cat "$TRAIN_PID")" 2>/dev/null \
   && grep -q "slm" "/proc/$(cat "$TRAIN_PID")/cmdline" 2>/dev/null; then
  # An earlier call's training is still running (the SSH session dropped): wait for it instead of starting another.
  train_pid="$(cat "$TRAIN_PID")"
  echo "training already running (pid $train_pid): waiting for it; log: $TRAIN_LOG"
else
  printf '+ nohup %s >> %s 2>&1 &\n' "$(show "${TRAIN_CMD[@]}")" "$(show "$TRAIN_LOG")"
  if [[ "$DRY_RUN" == 0 ]]; then
    nohup "${TRAIN_CMD[@]}" >> "$TRAIN_LOG" 2>&1 &
    train_pid=$!
    echo "$train_pid" > "$TRAIN_PID"
  fi
fi
echo "follow it with: tail -f $TRAIN_LOG"

# From here on a failure must not skip the pod stop below: errors are collected in `status`.
set +e
status=0
if [[ -n "$train_pid" ]]; then
  while kill -0 "$train_pid" 2>/dev/null; do sleep 30; done
  wait "$train_pid" 2>/dev/null   # the exit code when it is our child; the manifest below decides either way
fi
# The train stage is done exactly when its manifest exists (written last, after the adapter).
TRAIN_MANIFEST="$RUNS_DIR/$RUN_NAME/train/manifest.json"
if [[ "$DRY_RUN" == 0 && ! -f "$TRAIN_MANIFEST" ]]; then
  echo "error: training did not finish (no $TRAIN_MANIFEST); see $TRAIN_LOG, then rerun this script to resume" >&2
  status=1
fi

# ------------------------------------------------------------------ 10. reinforce (GRPO), with --reinforce or enabled
# Why after train, on the same pod: GRPO continues from the SFT adapter and generates 8 rollouts per prompt, the
# most GPU-hungry stage. Like train, `slm reinforce` continues from its newest complete checkpoint (under the run
# directory on the volume) when config and data match, so rerunning this script after a restart resumes it; a
# finished reinforce stage is skipped.
if [[ "$status" == 0 && "$REINFORCE" == 1 ]]; then
  REINFORCE_LOG="$LOGS/$RUN_NAME-reinforce.log"
  step "10. reinforce (GRPO from the SFT adapter); log: $REINFORCE_LOG"
  printf '+ %s >> %s 2>&1\n' "$(show "$SLM" reinforce "$CONFIG" "${SLM_SETS[@]}")" "$(show "$REINFORCE_LOG")"
  if [[ "$DRY_RUN" == 0 ]]; then
    if ! "$SLM" reinforce "$CONFIG" "${SLM_SETS[@]}" >> "$REINFORCE_LOG" 2>&1; then
      echo "error: reinforce did not finish; see $REINFORCE_LOG, then rerun this script to resume" >&2
      status=1
    fi
  fi
fi

# ------------------------------------------------------------------------------- 11. evaluate while the GPU is rented
# Why: base vs tuned answers on the test split take minutes on the GPU and hours on a laptop (with reinforce: base,
# SFT and RL on held-out calculation questions too).
if [[ "$status" == 0 && "${SKIP_EVALUATE:-0}" != 1 ]]; then
  step "11. evaluate; log: $LOGS/$RUN_NAME-evaluate.log"
  printf '+ %s >> %s 2>&1\n' "$(show "$SLM" evaluate "$CONFIG" "${SLM_SETS[@]}")" "$(show "$LOGS/$RUN_NAME-evaluate.log")"
  if [[ "$DRY_RUN" == 0 ]]; then
    "$SLM" evaluate "$CONFIG" "${SLM_SETS[@]}" >> "$LOGS/$RUN_NAME-evaluate.log" 2>&1 || status=$?
  fi
fi
echo
if [[ "$REINFORCE" == 1 ]]; then
  echo "artifacts: $RUNS_DIR/$RUN_NAME/ (adapters: train/adapter/ and reinforce/adapter/, metrics: evaluate/)"
  echo "merge the RL adapter into the base model with: $(show "$SLM" export "$CONFIG" "${SLM_SETS[@]}")" \
    "(export.adapter: auto takes it; sft the SFT one)"
else
  echo "artifacts: $RUNS_DIR/$RUN_NAME/ (adapter: train/adapter/, metrics: evaluate/)"
  echo "merge the adapter into the base model with: $(show "$SLM" export "$CONFIG" "${SLM_SETS[@]}")"
fi

# ------------------------------------------------------------------------------------- 12. stop the pod (on request)
# Why: an idle GPU pod bills by the hour. Stopping keeps the volume ($WORKSPACE) and releases the GPU; only when asked
# (--stop-pod or STOP_POD=1), because stopping also ends your SSH session. It also runs when training failed.
if [[ "$STOP_POD" == 1 ]]; then
  step "12. stop the pod"
  run runpodctl stop pod "${RUNPOD_POD_ID:-<RUNPOD_POD_ID>}"
fi
if [[ "$DRY_RUN" == 1 ]]; then
  echo
  if [[ ${#PROBLEMS[@]} -eq 0 ]]; then
    echo "dry run: no problems found (checked: GPU, disk, HF_TOKEN, config, teacher key, memory plan)"
  else
    echo "dry run: ${#PROBLEMS[@]} problem(s) the real run would hit:"
    printf -- '- %s\n' "${PROBLEMS[@]}"
    status=1
  fi
fi
exit "$status"
