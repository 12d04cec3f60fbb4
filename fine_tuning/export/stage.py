"""`slm export`: merge the LoRA adapter into its base and package the model where people run it.

Writes into `runs/<run>/export/`:
  merged/            safetensors weights with the adapter merged in, the tokenizer with the chat template the model
                     was trained with, generation_config.json (stops at the end-of-turn token), README.md (the model
                     card with the lineage) and slm_forest.json (system prompt and stop tokens, read by `slm ask`)
  Modelfile          for Ollama: the chat template in Go template syntax and its stop tokens (`fine_tuning.export.modelfile`)
  model-<type>.gguf  only with `export.gguf` and llama.cpp's converter installed (see below)

Merging (`export.merge`): the base is loaded in full precision — fp32 on CPU, the training dtype (bf16) on a GPU — and
the adapter is applied and merged there. A QLoRA adapter is never merged into 4-bit weights (the rounding would be
baked into the model): `fine_tuning.train.loading.load_trained` loads the base unquantised, and the merge refuses a model
that still holds 4-bit layers. Before saving, the merged model's logits on a probe prompt are compared with base +
adapter; the difference is recorded in the manifest stats.

GGUF (`export.gguf: true`): runs llama.cpp's `convert_hf_to_gguf.py` on merged/. It is found through the environment
variable LLAMA_CPP_CONVERT (the script), LLAMA_CPP_DIR (a llama.cpp checkout) or PATH. When it is missing the stage
fails with the install hint; with `export.gguf: false` it only says whether the converter is there. Not run in this
project's CI (llama.cpp is not installed there); the call is tested against a stand-in script.

Hub (`export.push_to_hub: user/repo`): uploads merged/ (private repository when it is created) with the token from
HF_TOKEN. Never run in tests.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from slm_forest.errors import SlmError
from slm_forest.files import atomic_writer, read_jsonl, write_json
from slm_forest.pipeline import StageContext, StageResult
from slm_forest.progress import console

MERGED = "merged"
CARD = "README.md"
CONVERTER_NAMES = ("convert_hf_to_gguf.py", "convert_hf_to_gguf", "convert-hf-to-gguf")
GGUF_INSTALL_HINT = (
    "install llama.cpp's converter: `git clone https://github.com/ggml-org/llama.cpp && pip install -r "
    "llama.cpp/requirements/requirements-convert_hf_to_gguf.txt`, then `export LLAMA_CPP_DIR=$PWD/llama.cpp` "
    "(or set LLAMA_CPP_CONVERT to the script)"
)
PROBE_TOLERANCE_FP32 = 1e-3


# ------------------------------------------------------------------------------------------------------- merge
def _four_bit_layers(model: Any) -> list[str]:
    return [name for name, module in model.named_modules() if "4bit" in type(module).__name__]


def probe_ids(tokenizer: Any, system_prompt: str | None) -> Any:
    import torch

    messages = ([{"role": "system", "content": system_prompt}] if system_prompt else []) + [
        {"role": "user", "content": "부가가치세 확정신고 기한은 언제인가요?"},
        {"role": "assistant", "content": "과세기간 종료 후 25일 이내입니다."},
    ]
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    return torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]])


def logits_of(model: Any, ids: Any) -> Any:
    import torch

    device = next(model.parameters()).device
    with torch.no_grad():
        return model(input_ids=ids.to(device), use_cache=False).logits.float().cpu()


def merge_adapter(train_dir: Path, system_prompt: str | None) -> tuple[Any, Any, dict[str, Any]]:
    """(merged model, tokenizer, facts): base + adapter in full precision, merged, checked against the unmerged."""
    from fine_tuning.train.loading import load_trained

    model, tokenizer = load_trained(train_dir)
    quantised = _four_bit_layers(model)
    if quantised:
        raise SlmError(
            f"{train_dir}: the base was loaded with 4-bit layers ({quantised[0]}); merging would bake the quantisation in",
            "load the base in bf16/fp32 for the merge (fine_tuning.train.loading.load_trained does; check train_summary.json)",
        )
    ids = probe_ids(tokenizer, system_prompt)
    before = logits_of(model, ids)
    merged = model.merge_and_unload()
    after = logits_of(merged, ids)
    diff = float((before - after).abs().max())
    dtype = str(next(merged.parameters()).dtype).replace("torch.", "")
    if dtype == "float32" and diff > PROBE_TOLERANCE_FP32:
        raise SlmError(
            f"merged logits differ from base + adapter by {diff:.2e} (tolerance {PROBE_TOLERANCE_FP32:g} in fp32)",
            "the adapter does not merge cleanly into this base; report it with train/adapter/adapter_config.json",
        )
    return merged, tokenizer, {"probe_max_abs_logit_diff": diff, "dtype": dtype, "probe_tokens": int(ids.shape[1])}


def save_merged(model: Any, tokenizer: Any, directory: Path, metadata: dict[str, Any]) -> Path:
    """save_pretrained into a temporary directory renamed into place, so a killed export leaves no half model."""
    tmp = directory.with_name(f".{directory.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    write_json(tmp / "slm_forest.json", metadata)
    shutil.rmtree(directory, ignore_errors=True)
    os.replace(tmp, directory)
    return directory


PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json")


def copy_image_processor(base: str, merged_dir: Path) -> list[str]:
    """Multimodal bases (Gemma 3 4B/12B) need their image processor files beside the weights to load as a pipeline."""
    copied: list[str] = []
    for name in PROCESSOR_FILES:
        local = Path(base) / name
        source: str | None = str(local) if local.is_file() else None
        if source is None and not Path(base).exists():
            try:
                from huggingface_hub import hf_hub_download

                source = hf_hub_download(base, name)
            except Exception:  # noqa: BLE001 - optional file: absent in the repo or no network/cache
                source = None
        if source is not None:
            shutil.copyfile(source, merged_dir / name)
            copied.append(name)
    return copied


# ------------------------------------------------------------------------------------------------------ lineage
def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None


def dataset_lineage(run_dir: Path) -> dict[str, Any]:
    """What the model was trained on, from the files the earlier stages left (each part optional)."""
    out: dict[str, Any] = {}
    build_manifest = _read_json(run_dir / "build" / "manifest.json")
    if build_manifest:
        splits = {
            Path(e["path"]).name: e
            for e in build_manifest.get("outputs", [])
            if Path(e["path"]).name in ("train.jsonl", "val.jsonl", "test.jsonl")
        }
        out["splits"] = {name: {"rows": e.get("rows"), "sha256": e["sha256"]} for name, e in sorted(splits.items())}
        joined = "".join(splits[name]["sha256"] for name in sorted(splits))
        out["fingerprint"] = hashlib.sha256(joined.encode()).hexdigest() if joined else None
        out["system_prompt"] = build_manifest.get("config", {}).get("system_prompt")
    info = _read_json(run_dir / "build" / "build_info.json")
    if info:
        out["upstream_fingerprints"] = info.get("fingerprints", {})
    distill = _read_json(run_dir / "distill" / "manifest.json")
    if distill:
        out["teachers_configured"] = [
            f"{t.get('provider')}:{t.get('model')}" for t in distill.get("config", {}).get("teachers", [])
        ]
    train_split = run_dir / "build" / "train.jsonl"
    if train_split.is_file():
        teachers: Counter[str] = Counter()
        prompts: Counter[str] = Counter()
        for row in read_jsonl(train_split):
            meta = row.get("meta", {})
            teachers[f"{meta.get('teacher')}:{meta.get('model')}"] += 1
            prompts[str(meta.get("prompt_version"))] += 1
        out["teachers"] = dict(teachers.most_common())
        out["prompt_versions"] = dict(prompts.most_common())
    documents = run_dir / "collect" / "documents.jsonl"
    if documents.is_file():
        kinds: Counter[str] = Counter()
        dates: dict[str, list[str]] = {"effective_date": [], "decision_date": []}
        for row in read_jsonl(documents):
            kinds[row.get("kind", "?")] += 1
            for key in dates:
                if row.get(key):
                    dates[key].append(row[key])
        out["corpus"] = {
            "documents": dict(kinds.most_common()),
            **{f"{key}_range": [min(v), max(v)] for key, v in dates.items() if v},
        }
    return out


def _yaml_block(data: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False).rstrip()


def render_card(
    run_name: str,
    summary: dict[str, Any],
    train_config: dict[str, Any],
    lineage: dict[str, Any],
    metrics: dict[str, Any] | None,
    merge_facts: dict[str, Any],
    family: str | None,
) -> str:
    base = summary.get("base_model")
    base_path = summary.get("base_model_path")
    is_local_base = bool(summary.get("base_model_dir"))
    front = {
        "language": ["ko"],
        "library_name": "transformers",
        "pipeline_tag": "text-generation",
        "tags": ["korean", "tax-law", "lora", "slm-forest"],
        "license": "other",
    }
    if not is_local_base and base_path:
        front["base_model"] = base_path
    lines = ["---", _yaml_block(front), "---", "", f"# {run_name}: Korean tax-law assistant ({base})", ""]
    lines += [
        f"A {'QLoRA' if summary.get('method') == 'qlora' else 'LoRA'} fine-tune of `{base}`"
        + (" (a tiny random model built for CPU smoke runs: its answers are not meaningful)" if is_local_base else "")
        + f", merged into the base weights ({merge_facts.get('dtype')}). Trained by SLM Forest on question/answer pairs "
        "distilled from Korean tax statutes and rulings. It is not legal advice: check every answer against the law.",
        "",
        "## Use",
        "",
        "```python",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        'tok = AutoTokenizer.from_pretrained("PATH_OR_REPO")',
        'model = AutoModelForCausalLM.from_pretrained("PATH_OR_REPO")',
        'messages = [{"role": "user", "content": "부가가치세 신고는 언제 해야 하나요?"}]',
        'ids = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)',
        "print(tok.decode(model.generate(**ids, max_new_tokens=256)[0], skip_special_tokens=True))",
        "```",
        "",
        'Or `slm ask --model PATH "질문"`, `slm serve --model PATH` (OpenAI-compatible), '
        + ("`ollama create -f ../Modelfile`." if family else "(no Ollama template for this chat format)."),
        "",
        "## Lineage",
        "",
    ]
    fingerprint = lineage.get("fingerprint")
    lines.append(f"- dataset fingerprint (sha256 of the split hashes): `{fingerprint or 'unknown'}`")
    for name, split in lineage.get("splits", {}).items():
        lines.append(f"  - {name}: {split['rows']} rows, sha256 `{split['sha256'][:16]}…`")
    for name, digest in lineage.get("upstream_fingerprints", {}).items():
        lines.append(f"- {name}: sha256 `{digest[:16]}…`")
    if lineage.get("teachers"):
        lines.append("- teachers (training pairs): " + ", ".join(f"{k} ({v})" for k, v in lineage["teachers"].items()))
    if lineage.get("prompt_versions"):
        lines.append("- prompt versions: " + ", ".join(f"{k} ({v})" for k, v in lineage["prompt_versions"].items()))
    corpus = lineage.get("corpus")
    if corpus:
        docs = ", ".join(f"{k} {v}" for k, v in corpus["documents"].items())
        lines.append(f"- corpus: {docs}")
        for key in ("effective_date_range", "decision_date_range"):
            if key in corpus:
                lines.append(f"  - {key.replace('_range', '').replace('_', ' ')}s: {corpus[key][0]} … {corpus[key][1]}")
    if not lineage:
        lines.append("- (the run directory holds no build/collect files: lineage unknown)")
    lines += [
        "",
        "## Training",
        "",
        "```yaml",
        _yaml_block(train_config) if train_config else "# train config not found",
        "```",
        "",
    ]
    facts = {
        k: summary.get(k)
        for k in (
            "method",
            "dtype",
            "device",
            "global_step",
            "train_loss",
            "eval_loss",
            "best_eval_loss",
            "lora",
            "chat_template",
            "end_of_turn_token",
        )
        if summary.get(k) is not None
    }
    lines += ["```yaml", _yaml_block(facts), "```", ""]
    lines += ["## Evaluation", ""]
    if metrics and metrics.get("headline"):
        lines += ["| metric | base | tuned | Δ |", "|---|---|---|---|"]
        for row in metrics["headline"]:
            lines.append(f"| {row['metric']} | {_num(row['base'])} | {_num(row['tuned'])} | {_num(row['delta'])} |")
        lines += [
            "",
            f"From `evaluate/metrics.json` ({metrics['examples']['generated']} test answers); see evaluate/report.md.",
        ]
    else:
        lines.append("Not evaluated yet: run `slm evaluate CONFIG` before `slm export CONFIG` to put the numbers here.")
    lines += [
        "",
        f"Merge check: max |logit difference| between base + adapter and the merged model on a probe prompt: "
        f"{merge_facts.get('probe_max_abs_logit_diff', 0):.2e}.",
    ]
    return "\n".join(lines) + "\n"


def _num(value: Any) -> str:
    return "–" if value is None else (f"{value:.4g}" if isinstance(value, float) else str(value))


# --------------------------------------------------------------------------------------------------------- GGUF
def gguf_mode(value: Any) -> str:
    """export.gguf: false → off; true → required (error when llama.cpp is missing); "auto" → when installed."""
    if value is True or value in ("true", "required"):
        return "required"
    if value == "auto":
        return "auto"
    return "off"


def find_gguf_converter() -> list[str] | None:
    """The command prefix that runs llama.cpp's HF→GGUF converter, or None."""
    candidates: list[Path] = []
    if os.environ.get("LLAMA_CPP_CONVERT"):
        candidates.append(Path(os.environ["LLAMA_CPP_CONVERT"]))
    if os.environ.get("LLAMA_CPP_DIR"):
        candidates.append(Path(os.environ["LLAMA_CPP_DIR"]) / "convert_hf_to_gguf.py")
    for name in CONVERTER_NAMES:
        found = shutil.which(name)
        if found:
            candidates.append(Path(found))
    for path in candidates:
        if path.is_file():
            return [sys.executable, str(path)] if path.suffix == ".py" else [str(path)]
    return None


def convert_to_gguf(command: list[str], merged_dir: Path, out_file: Path, outtype: str) -> Path:
    tmp = out_file.with_name(f".{out_file.name}.tmp")
    tmp.unlink(missing_ok=True)
    args = [*command, str(merged_dir), "--outfile", str(tmp), "--outtype", outtype]
    console.print(f"export: converting to GGUF ({outtype}) with {command[-1]}")
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        last = (proc.stderr or proc.stdout or "").strip().splitlines()[-1:] or ["no output"]
        raise SlmError(
            f"GGUF conversion failed (exit {proc.returncode}): {last[0][:300]}",
            "run the same command by hand to see the full log: "
            + " ".join(args[:2])
            + f" {merged_dir} --outtype {outtype}",
        )
    os.replace(tmp, out_file)
    return out_file


# --------------------------------------------------------------------------------------------------------- hub
def push_to_hub(folder: Path, repo_id: str) -> str:
    token = os.environ.get("HF_TOKEN", "").strip()
    if not token:
        raise SlmError(
            f"export.push_to_hub={repo_id} needs a Hugging Face token in HF_TOKEN, which is not set",
            "export HF_TOKEN=hf_… (a write token), or set export.push_to_hub to null",
        )
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, private=True, exist_ok=True)
    api.upload_folder(folder_path=str(folder), repo_id=repo_id, commit_message="slm export")
    return f"https://huggingface.co/{repo_id}"


# -------------------------------------------------------------------------------------------------------- stage
def run_export(ctx: StageContext) -> StageResult:
    from transformers.utils import logging as hf_logging

    from fine_tuning.export.modelfile import template_family, write_modelfile
    from fine_tuning.serve.generate import END_OF_TURN_TOKENS, chat_template_of
    from fine_tuning.train.loading import read_train_summary

    cfg = ctx.cfg.export
    train_dir, stage_dir, run_dir = ctx.upstream_dir("train"), ctx.stage_dir, ctx.run_dir
    summary = read_train_summary(train_dir)
    train_manifest = _read_json(train_dir / "manifest.json") or {}
    lineage = dataset_lineage(run_dir)
    system_prompt = lineage.get("system_prompt")
    metrics = _read_json(run_dir / "evaluate" / "metrics.json")
    outputs: list[Path] = []
    stats: dict[str, Any] = {}
    notes: list[str] = []
    merged_dir = stage_dir / MERGED

    if not cfg.merge:
        mode = gguf_mode(cfg.gguf)
        if mode == "required" or cfg.push_to_hub or cfg.ollama_modelfile:
            raise SlmError(
                "export.merge is false but export.gguf / push_to_hub / ollama_modelfile need the merged model",
                "set export.merge: true, or turn those off (the adapter itself is in train/adapter/)",
            )
        return StageResult(outputs=[], summary="nothing to do (export.merge is false)")

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    merged, tokenizer, facts = merge_adapter(train_dir, system_prompt)
    stats["merge"] = facts
    template = chat_template_of(tokenizer)
    family = template_family(template)
    vocab = tokenizer.get_vocab()
    stop_tokens = [t for t in END_OF_TURN_TOKENS if t in vocab and template and t in template]
    metadata = {
        "run_name": ctx.cfg.run_name,
        "base_model": summary.get("base_model"),
        "system_prompt": system_prompt,
        "end_of_turn_token": summary.get("end_of_turn_token"),
        "stop_tokens": stop_tokens,
        "template_family": family.name if family else None,
        "dataset_fingerprint": lineage.get("fingerprint"),
    }
    save_merged(merged, tokenizer, merged_dir, metadata)
    if getattr(merged.config, "vision_config", None) is not None:
        base_source = (
            str(train_dir / summary["base_model_dir"])
            if summary.get("base_model_dir")
            else str(summary.get("base_model_path"))
        )
        copied = copy_image_processor(base_source, merged_dir)
        stats["image_processor_files"] = copied
        if not copied:
            notes.append(
                f"multimodal model without image processor files ({', '.join(PROCESSOR_FILES)}): text use only"
            )
    card = render_card(
        ctx.cfg.run_name,
        summary,
        train_manifest.get("config", {}),
        lineage,
        metrics,
        facts,
        family.name if family else None,
    )
    with atomic_writer(merged_dir / CARD) as out:
        out.write(card)
    outputs.append(merged_dir)

    gguf_file: Path | None = None
    mode = gguf_mode(cfg.gguf)
    converter = find_gguf_converter()
    if mode != "off" and converter is not None:
        outtype = "bf16" if summary.get("dtype") == "bf16" else "f16"
        gguf_file = convert_to_gguf(converter, merged_dir, stage_dir / f"model-{outtype}.gguf", outtype)
        outputs.append(gguf_file)
        stats["gguf"] = {"file": gguf_file.name, "bytes": gguf_file.stat().st_size, "outtype": outtype}
    elif mode == "required":
        raise SlmError("export.gguf is true but llama.cpp's convert_hf_to_gguf.py was not found", GGUF_INSTALL_HINT)
    elif converter is None:
        notes.append(
            "GGUF skipped: export.gguf is false and llama.cpp's convert_hf_to_gguf.py is not installed "
            "(to convert: a llama.cpp checkout in LLAMA_CPP_DIR and export.gguf: true)"
        )
    else:
        notes.append("GGUF not written: llama.cpp's converter is installed; set export.gguf: true to convert")

    if cfg.ollama_modelfile:
        if family is None:
            notes.append(
                "no Modelfile: the chat template is none of gemma / phi2 / chatml, so no Ollama template is known for it"
            )
        else:
            source = f"./{gguf_file.name}" if gguf_file else f"./{MERGED}"
            note = (
                ""
                if gguf_file
                else (
                    "FROM a safetensors directory: `ollama create` converts Gemma/Llama/Mistral/Phi-3 and similar; for other\n"
                    "architectures (e.g. Phi-2) convert to GGUF first (export.gguf: true) and point FROM at the .gguf file."
                )
            )
            outputs.append(write_modelfile(stage_dir / "Modelfile", source, family, system_prompt, note=note))
            stats["modelfile"] = {"family": family.name, "stop": list(family.stop), "from": source}

    if cfg.push_to_hub:
        stats["hub_url"] = push_to_hub(merged_dir, cfg.push_to_hub)

    for note in notes:
        console.print(f"[yellow]export: {note}[/yellow]")
    stats["notes"] = notes
    size = sum(p.stat().st_size for p in merged_dir.rglob("*") if p.is_file())
    return StageResult(
        outputs=outputs,
        counts={"files": sum(1 for p in merged_dir.rglob("*") if p.is_file()), "merged_mb": round(size / 1e6)},
        stats=stats,
        summary=(
            f"merged {summary.get('base_model')} + adapter → {merged_dir} ({facts['dtype']}, probe logit diff "
            f"{facts['probe_max_abs_logit_diff']:.1e})"
            + (f", {gguf_file.name}" if gguf_file else "")
            + (", Modelfile" if "modelfile" in stats else "")
        ),
    )
