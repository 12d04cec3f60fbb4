"""A tiny *trained* run for the evaluate / export / ask / serve tests, and tests of that fixture itself.

`tiny_run(tmp_path_factory, kind)` builds, once per session and kind, a run directory with the files the real
stages write and the later stages read:

    build/{train,val,test}.jsonl + manifest.json (with the system prompt)   collect/documents.jsonl + manifest.json
    train/base_model/ (fine_tuning.train.tiny.build_tiny_model)  train/adapter/  train/tokenizer/  train/train_summary.json
    train/loss.png  train/manifest.json

The adapter is really trained (LoRA, a plain torch loop over the chat-template-rendered answers, 25 steps), so the
tuned model is measurably better than its base on held-out answers: the evaluation has something to find. It does
not go through TRL (whose import alone costs ~10 s); `tests/test_evaluate_pipeline.py` runs the real train stage.
`copy_run(src, dst)` gives each test its own copy to write into.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from slm_forest.files import write_json, write_jsonl
from slm_forest.manifest import Manifest, describe_files, write_manifest
from slm_forest.records import ChatMessage, SFTExample

SYSTEM_PROMPT = "당신은 한국 세법 전문가입니다. 관련 법령을 근거로 정확하게 답변하세요."

# (question, answer, law, kind, style, citations)
QA: list[tuple[str, str, str | None, str, str, list[str]]] = [
    (
        "부가가치세 확정신고는 언제까지 해야 하나요?",
        "부가가치세법 제49조에 따라 과세기간 종료 후 25일 이내에 확정신고하고 납부하여야 합니다. (근거: 부가가치세법 제49조)",
        "부가가치세법",
        "statute_article",
        "explain",
        ["부가가치세법 제49조"],
    ),
    (
        "부가가치세 예정신고 기간은 어떻게 되나요?",
        "부가가치세법 제48조에 따라 예정신고기간이 끝난 후 25일 이내에 예정신고하여야 합니다. (근거: 부가가치세법 제48조)",
        "부가가치세법",
        "statute_article",
        "explain",
        ["부가가치세법 제48조"],
    ),
    (
        "종합소득세 확정신고 기한은 언제인가요?",
        "소득세법 제70조에 따라 해당 과세기간의 다음 연도 5월 1일부터 5월 31일까지 신고하여야 합니다. (근거: 소득세법 제70조)",
        "소득세법",
        "statute_article",
        "explain",
        ["소득세법 제70조"],
    ),
    (
        "과세표준이 5,000만원이면 종합소득세 산출세액은 얼마인가요?",
        "소득세법 제55조의 세율을 적용하면 84만원 + (5,000만원 - 1,400만원) × 15% = 624만원입니다. 따라서 산출세액은 624만원입니다.",
        "소득세법",
        "statute_article",
        "calculation",
        ["소득세법 제55조"],
    ),
    (
        "과세표준이 3,000만원이면 종합소득세 산출세액은 얼마인가요?",
        "소득세법 제55조의 세율을 적용하면 84만원 + (3,000만원 - 1,400만원) × 15% = 324만원입니다. 따라서 산출세액은 324만원입니다.",
        "소득세법",
        "statute_article",
        "calculation",
        ["소득세법 제55조"],
    ),
    (
        "수정신고는 언제 할 수 있나요?",
        "국세기본법 제45조에 따라 관할 세무서장이 결정 또는 경정하여 통지하기 전까지 수정신고할 수 있습니다. (근거: 국세기본법 제45조)",
        "국세기본법",
        "statute_article",
        "explain",
        ["국세기본법 제45조"],
    ),
    (
        "경정청구는 언제까지 할 수 있나요?",
        "국세기본법 제45조의2에 따라 법정신고기한이 지난 후 5년 이내에 경정을 청구할 수 있습니다. (근거: 국세기본법 제45조의2)",
        "국세기본법",
        "statute_article",
        "explain",
        ["국세기본법 제45조의2"],
    ),
    (
        "법인세 신고기한은 언제인가요?",
        "법인세법 제60조에 따라 사업연도 종료일이 속하는 달의 말일부터 3개월 이내에 신고하여야 합니다. (근거: 법인세법 제60조)",
        "법인세법",
        "statute_article",
        "explain",
        ["법인세법 제60조"],
    ),
    (
        "증여받은 현금 1억원에 대한 증여세 과세표준은 얼마인가요?",
        "상속세 및 증여세법 제53조에 따라 성년 자녀는 5,000만원을 공제하므로 과세표준은 5,000만원입니다.",
        "상속세 및 증여세법",
        "statute_article",
        "calculation",
        ["상속세 및 증여세법 제53조"],
    ),
    (
        "사업자등록은 언제 신청해야 하나요?",
        "부가가치세법 제8조에 따라 사업 개시일부터 20일 이내에 사업장 관할 세무서장에게 등록을 신청하여야 합니다. (근거: 부가가치세법 제8조)",
        "부가가치세법",
        "statute_article",
        "explain",
        ["부가가치세법 제8조"],
    ),
    (
        "간이과세자의 부가가치세 신고는 어떻게 하나요?",
        "부가가치세법 제67조에 따라 간이과세자는 과세기간의 다음 달 25일까지 신고하여야 합니다. (근거: 부가가치세법 제67조)",
        "부가가치세법",
        "statute_article",
        "explain",
        ["부가가치세법 제67조"],
    ),
    (
        "원천징수한 소득세는 언제 납부하나요?",
        "소득세법 제128조에 따라 징수일이 속하는 달의 다음 달 10일까지 납부하여야 합니다. (근거: 소득세법 제128조)",
        "소득세법",
        "interpretation",
        "explain",
        ["소득세법 제128조"],
    ),
]
SPLIT = {"train": range(0, 12), "val": range(9, 12), "test": range(0, 12)}
ARTICLES = [
    ("부가가치세법", 49),
    ("부가가치세법", 48),
    ("부가가치세법", 8),
    ("소득세법", 70),
    ("소득세법", 55),
    ("국세기본법", 45),
    ("법인세법", 60),
    ("상속세 및 증여세법", 53),
]


def examples(indices: range | list[int]) -> list[SFTExample]:
    out = []
    for i in indices:
        question, answer, law, kind, style, citations = QA[i]
        out.append(
            SFTExample(
                id=f"sft-{i:04d}",
                messages=[
                    ChatMessage(role="system", content=SYSTEM_PROMPT),
                    ChatMessage(role="user", content=question),
                    ChatMessage(role="assistant", content=answer),
                ],
                meta={
                    "pair_id": f"qa-{i:04d}",
                    "doc_id": f"doc-{i:04d}",
                    "kind": kind,
                    "law_name": law,
                    "audience": "expert",
                    "style": style,
                    "citations": citations,
                    "teacher": "offline",
                    "model": "offline-v1",
                    "prompt_version": "offline@1",
                },
            )
        )
    return out


def documents() -> list[dict[str, Any]]:
    rows = []
    for law, article in ARTICLES:
        rows.append(
            {
                "id": f"law-{law}-{article}",
                "kind": "statute_article",
                "title": f"{law} 제{article}조",
                "text": f"{law} 제{article}조 본문",
                "source": "test",
                "law_name": law,
                "article_no": article,
                "effective_date": "2025-01-01",
            }
        )
    rows.append(
        {
            "id": "expc-1",
            "kind": "interpretation",
            "title": "원천징수 해석",
            "text": "해석 본문",
            "source": "test",
            "decision_date": "2023-05-02",
        }
    )
    return rows


def _manifest(run_dir: Path, stage: str, config: dict[str, Any], outputs: list[Path], counts: dict[str, int]) -> None:
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    write_manifest(
        run_dir / stage,
        Manifest(
            stage=stage,
            run_name=run_dir.name,
            fingerprint=f"test-{stage}",
            config=config,
            outputs=describe_files(outputs, run_dir),
            counts=counts,
            started_at=now,
            finished_at=now,
            seconds=0.0,
        ),
    )


def train_adapter(model: Any, tokenizer: Any, convs: list[list[dict[str, str]]], steps: int, seed: int) -> list[float]:
    """LoRA training on the answers (prompt tokens masked), a plain loop: what SFT does, without TRL."""
    import torch

    torch.manual_seed(seed)
    rows = []
    for messages in convs:
        full = tokenizer.apply_chat_template(messages, tokenize=False)
        prompt = tokenizer.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
        ids = tokenizer(full, add_special_tokens=False)["input_ids"]
        n_prompt = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
        rows.append((ids, [-100] * n_prompt + ids[n_prompt:]))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-2)
    model.train()
    losses = []
    for step in range(steps):
        batch = [rows[(step * 4 + j) % len(rows)] for j in range(4)]
        width = max(len(ids) for ids, _ in batch)
        input_ids = torch.tensor([ids + [tokenizer.pad_token_id] * (width - len(ids)) for ids, _ in batch])
        labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in batch])
        mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in batch])
        loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(float(loss.detach()))
    model.eval()
    return losses


def build_run(run_dir: Path, kind: str = "tiny-random-phi", steps: int = 25, seed: int = 7) -> Path:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from fine_tuning.plan.registry import get_model_spec
    from fine_tuning.train.tiny import build_tiny_model

    build_dir, train_dir, collect_dir = run_dir / "build", run_dir / "train", run_dir / "collect"
    splits = {name: examples(list(idx)) for name, idx in SPLIT.items()}
    for name, rows in splits.items():
        write_jsonl(build_dir / f"{name}.jsonl", rows)
    _manifest(
        run_dir,
        "build",
        {"system_prompt": SYSTEM_PROMPT},
        [build_dir / f"{n}.jsonl" for n in splits],
        {n: len(r) for n, r in splits.items()},
    )
    write_jsonl(collect_dir / "documents.jsonl", documents())
    _manifest(run_dir, "collect", {}, [collect_dir / "documents.jsonl"], {"documents": len(ARTICLES) + 1})

    texts = [m.content for ex in splits["train"] for m in ex.messages] * 3
    base_dir = build_tiny_model(kind, train_dir / "base_model", texts, seed)
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    model = AutoModelForCausalLM.from_pretrained(base_dir)
    model_class = type(model).__name__
    targets = get_model_spec(kind).lora_target_modules  # what the train stage wraps for this architecture
    model = get_peft_model(
        model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules=targets, task_type="CAUSAL_LM")
    )
    convs = [[{"role": m.role, "content": m.content} for m in ex.messages] for ex in splits["train"]]
    losses = train_adapter(model, tokenizer, convs, steps, seed)
    model.save_pretrained(train_dir / "adapter")
    tokenizer.save_pretrained(train_dir / "tokenizer")
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot(range(1, len(losses) + 1), losses)
    fig.savefig(train_dir / "loss.png")
    plt.close(fig)
    summary = {
        "base_model": kind,
        "base_model_path": str(base_dir),
        "base_model_dir": "base_model",
        "model_class": model_class,
        "method": "lora",
        "dtype": "fp32",
        "device": "cpu",
        "global_step": steps,
        "train_loss": losses[-1],
        "eval_loss": None,
        "end_of_turn_token": "<end_of_turn>",
        "chat_template": "tokenizer",
        "lora": {"r": 16, "alpha": 32, "dropout": 0.0},
    }
    write_json(train_dir / "train_summary.json", summary)
    train_cfg = {"base_model": kind, "method": "lora", "max_steps": steps, "learning_rate": 0.01}
    outputs = [train_dir / n for n in ("adapter", "tokenizer", "base_model", "loss.png", "train_summary.json")]
    _manifest(run_dir, "train", train_cfg, outputs, {"steps": steps})
    return run_dir


_CACHE: dict[str, Path] = {}


def tiny_run(tmp_path_factory: Any, kind: str = "tiny-random-phi") -> Path:
    """The pristine run for `kind`, built once per session; copy it (`copy_run`) before writing into it."""
    if kind not in _CACHE:
        _CACHE[kind] = build_run(tmp_path_factory.mktemp(f"run-{kind}") / "tiny", kind)
    return _CACHE[kind]


def copy_run(src: Path, dst_parent: Path, name: str = "tiny") -> Path:
    dst = dst_parent / name
    shutil.copytree(src, dst)
    # the tiny base's absolute path recorded by the summary must follow the copy
    summary_path = dst / "train" / "train_summary.json"
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    summary["base_model_path"] = str(dst / "train" / "base_model")
    summary_path.write_text(json.dumps(summary, ensure_ascii=False), encoding="utf-8")
    refresh_manifest(dst, "train")  # the runner trusts an upstream stage only while its outputs match its manifest
    return dst


def refresh_manifest(run_dir: Path, stage: str) -> None:
    """Re-describe a stage's outputs after a test edited them on purpose (size and mtime are checked by the runner)."""
    from slm_forest.manifest import read_manifest

    manifest = read_manifest(run_dir / stage)
    assert manifest is not None, f"{run_dir / stage} has no manifest"
    fresh = {entry.path: entry for entry in describe_files([run_dir / e.path for e in manifest.outputs], run_dir)}
    manifest.outputs = [fresh.get(entry.path, entry) for entry in manifest.outputs]
    write_manifest(run_dir / stage, manifest)


# ---------------------------------------------------------------------------------------------- fixture tests
def _assistant_loss(model: Any, tokenizer: Any, example: SFTExample) -> float:
    import torch

    messages = [{"role": m.role, "content": m.content} for m in example.messages]
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    prompt = tokenizer.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
    ids = tokenizer(full, add_special_tokens=False)["input_ids"]
    n_prompt = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    labels = [-100] * n_prompt + ids[n_prompt:]
    with torch.no_grad():
        return float(model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels])).loss)


def test_tiny_run_adapter_is_trained_and_loads_back(tmp_path_factory):
    from fine_tuning.train.loading import load_trained

    run = tiny_run(tmp_path_factory)
    model, tokenizer = load_trained(run / "train", device="cpu")
    example = examples([0])[0]
    tuned = _assistant_loss(model, tokenizer, example)
    with model.disable_adapter():
        base = _assistant_loss(model, tokenizer, example)
    assert tuned < base - 0.5, (base, tuned)  # the adapter learned the answers; the base is random
