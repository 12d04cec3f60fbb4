"""The model card (merged/README.md): how to use the model, its lineage from the run's files, training and evaluation."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

from slm_forest.files import read_jsonl

CARD = "README.md"


def read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None


def dataset_lineage(run_dir: Path) -> dict[str, Any]:
    """What the model was trained on, from the files the earlier stages left (each part optional)."""
    out: dict[str, Any] = {}
    build_manifest = read_json(run_dir / "build" / "manifest.json")
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
    info = read_json(run_dir / "build" / "build_info.json")
    if info:
        out["upstream_fingerprints"] = info.get("fingerprints", {})
    distill = read_json(run_dir / "distill" / "manifest.json")
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


def _front_matter(summary: dict[str, Any]) -> list[str]:
    front = {
        "language": ["ko"],
        "library_name": "transformers",
        "pipeline_tag": "text-generation",
        "tags": ["korean", "tax-law", "lora", "slm-forest"],
        "license": "other",
    }
    if not summary.get("base_model_dir") and summary.get("base_model_path"):
        front["base_model"] = summary.get("base_model_path")
    return ["---", _yaml_block(front), "---", ""]


_METHOD_NAMES = {"qlora": "QLoRA", "lora": "LoRA", "full": "full"}


def _intro_and_use(
    run_name: str, summary: dict[str, Any], merge_facts: dict[str, Any], family: str | None
) -> list[str]:
    base = summary.get("base_model")
    is_local_base = bool(summary.get("base_model_dir"))
    return [
        f"# {run_name}: Korean tax-law assistant ({base})",
        "",
        f"A {_METHOD_NAMES.get(summary.get('method'), 'LoRA')} fine-tune of `{base}`"
        + (" (a tiny random model built for CPU smoke runs: its answers are not meaningful)" if is_local_base else "")
        + (
            f" ({merge_facts.get('dtype')}, every weight trained)"
            if summary.get("method") == "full"
            else _rl_clause(merge_facts) + f", merged into the base weights ({merge_facts.get('dtype')})"
        )
        + ". Trained by SLM Forest on question/answer pairs "
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
        "out = model.generate(**ids, max_new_tokens=256)",
        'print(tok.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True))  # the answer only',
        "```",
        "",
        'Or `slm ask --model PATH "질문"`, `slm serve --model PATH` (OpenAI-compatible), '
        + ("`ollama create -f ../Modelfile`." if family else "(no Ollama template for this chat format)."),
        "",
    ]


def _rl_clause(merge_facts: dict[str, Any]) -> str:
    adapter = merge_facts.get("adapter") or {}
    if adapter.get("which") != "rl":
        return ""
    return (
        ", then reinforced with GRPO on calculation questions rewarded by the tax calculator (the RL adapter, "
        f"`{adapter.get('path')}`, is the one merged)"
    )


def _reinforce_section(merge_facts: dict[str, Any]) -> list[str]:
    adapter = merge_facts.get("adapter") or {}
    if adapter.get("which") != "rl":
        return ["## Adapter", "", "The SFT adapter (`train/adapter`) is merged; no RL adapter (export.adapter).", ""]
    facts = adapter.get("reinforce") or {}
    return [
        "## Reinforcement (GRPO)",
        "",
        f"Merged adapter: `{adapter.get('path')}` (export.adapter), continued from the SFT adapter for "
        f"{_num(facts.get('global_step'))} GRPO steps; mean reward {_num(facts.get('reward_first'))} at the first "
        f"step, {_num(facts.get('reward_last'))} at the last; {_num(facts.get('zero_variance_groups'))} of "
        f"{_num(facts.get('groups'))} rollout groups had zero reward variance.",
        "",
    ]


def _lineage_section(lineage: dict[str, Any]) -> list[str]:
    lines = ["## Lineage", ""]
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
    return lines


TRAINING_FACTS = (
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


def _training_section(summary: dict[str, Any], train_config: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "## Training",
        "",
        "```yaml",
        _yaml_block(train_config) if train_config else "# train config not found",
        "```",
        "",
    ]
    facts = {k: summary.get(k) for k in TRAINING_FACTS if summary.get(k) is not None}
    return lines + ["```yaml", _yaml_block(facts), "```", ""]


def _evaluation_section(metrics: dict[str, Any] | None, merge_facts: dict[str, Any]) -> list[str]:
    lines = ["## Evaluation", ""]
    if metrics and metrics.get("headline"):
        lines += ["| metric | base | tuned | Δ |", "|---|---|---|---|"]
        for row in metrics["headline"]:
            lines.append(f"| {row['metric']} | {_num(row['base'])} | {_num(row['tuned'])} | {_num(row['delta'])} |")
        lines += [
            "",
            f"From `evaluate/metrics.json` ({metrics['examples']['generated']} test answers); see evaluate/report.md.",
        ]
        calc = metrics.get("calc_heldout") or {}
        if calc.get("models"):
            accuracy = ", ".join(f"{name.upper()} {m['exact']}/{m['n']}" for name, m in calc["models"].items())
            lines += ["", f"Held-out calculation questions with the final amount exact to the 원: {accuracy}."]
    else:
        lines.append("Not evaluated yet: run `slm evaluate CONFIG` before `slm export CONFIG` to put the numbers here.")
    if str(merge_facts.get("merge", "")).startswith("none"):  # train.method full: no adapter, nothing merged
        return lines + ["", "Every weight was trained (train.method full): there is no adapter, nothing was merged."]
    return lines + [
        "",
        f"Merge check: max |logit difference| between base + adapter and the merged model on a probe prompt: "
        f"{merge_facts.get('probe_max_abs_logit_diff', 0):.2e}.",
    ]


def render_card(
    run_name: str,
    summary: dict[str, Any],
    train_config: dict[str, Any],
    lineage: dict[str, Any],
    metrics: dict[str, Any] | None,
    merge_facts: dict[str, Any],
    family: str | None,
) -> str:
    lines = (
        _front_matter(summary)
        + _intro_and_use(run_name, summary, merge_facts, family)
        + _lineage_section(lineage)
        + _training_section(summary, train_config)
        + _reinforce_section(merge_facts)
        + _evaluation_section(metrics, merge_facts)
    )
    return "\n".join(lines) + "\n"


def _num(value: Any) -> str:
    return "–" if value is None else (f"{value:.4g}" if isinstance(value, float) else str(value))
