"""The reinforce prompts, config and planner terms: seeded questions stating every fact, families kept in one split,
the dataset's verified calculation pairs taken in their build split, `slm run` skipping the stage unless enabled."""

from __future__ import annotations

from pathlib import Path

import pytest

from fine_tuning.reinforce.plan import reinforce_plan
from fine_tuning.reinforce.prompts import (
    check_no_family_in_two_splits,
    dataset_rows,
    generated_rows,
    question_amounts,
)
from fine_tuning.reinforce.score import wilson
from slm_datagen.taxlaw.kinds import INPUT_TYPES
from slm_datagen.taxlaw.questions import KINDS, family_of, generate_questions
from slm_forest.config import load_config
from slm_forest.errors import SlmError
from slm_forest.files import write_jsonl
from slm_forest.pipeline import STAGE_ORDER, stage_enabled


def test_questions_are_seeded_and_cover_every_kind_and_audience():
    first, again, other = generate_questions(120, 7), generate_questions(120, 7), generate_questions(120, 8)
    assert [q.question for q in first] == [q.question for q in again]
    assert [q.question for q in first] != [q.question for q in other]
    assert {q.kind for q in generate_questions(300, 7)} == set(KINDS)
    assert {q.audience for q in first} == {"expert", "layperson"}
    assert len({q.id for q in first}) == len(first)


def test_every_amount_input_is_stated_in_the_question():
    for q in generate_questions(300, 3):
        stated = question_amounts(q.question)
        for name, value in q.case.inputs.items():
            if INPUT_TYPES[q.kind][name] == "won" and value:
                assert value in stated, (name, value, q.question)
        assert q.computation.payable == q.computation.payable  # computes


def test_amounts_are_spread_over_orders_of_magnitude():
    gifts = [q.case.inputs["amount_won"] for q in generate_questions(400, 5, ("gift_tax",))]
    assert min(gifts) < 100_000_000 < 1_000_000_000 < max(gifts)
    late = [q for q in generate_questions(400, 5, ("gift_tax",)) if not q.case.inputs["filed_on_time"]]
    assert 0.05 < len(late) / 400 < 0.3


def test_family_is_kind_and_input_shape_not_amounts():
    a, b = generate_questions(2, 1, ("income_tax",))
    assert family_of(a.case).split("|")[0] == "income_tax"
    assert "taxable_income_won=" not in family_of(a.case)
    same_year = [q for q in generate_questions(60, 1, ("income_tax",)) if q.case.year == a.case.year]
    assert {q.family for q in same_year} == {a.family}


def test_no_family_in_two_splits_and_every_split_used():
    rows = generated_rows(400, 9, KINDS, 0.1, 0.1)
    check_no_family_in_two_splits(rows)
    assert {row.split for row in rows} == {"train", "val", "test"}
    families = {}
    for row in rows:
        assert families.setdefault(row.family, row.split) == row.split


def test_dataset_pairs_keep_their_build_split_and_skip_unverified(tmp_path):
    build, distill = tmp_path / "build", tmp_path / "distill"
    pair = {
        "id": "p1",
        "chunk_id": "c1",
        "doc_id": "d1",
        "kind": "statute_article",
        "question": "2024년에 아버지로부터 3억원을 증여받은 성인 자녀의 증여세는 얼마인가요?",
        "answer": "과세표준 2억 5,000만원, 산출세액 4,000만원, 납부할 세액은 3,880만원입니다.",
        "audience": "expert",
        "style": "calculation",
        "calculation": {
            "kind": "gift_tax",
            "year": 2024,
            "inputs": {"amount_won": 300_000_000, "relationship": "lineal_ascendant"},
            "result_won": 38_800_000,
            "result_field": "payable",
        },
        "teacher": "offline",
        "model": "offline-v1",
        "prompt_version": "t",
        "request_key": "k",
    }
    free = pair | {"id": "p2", "calculation": None, "question": "계산해 주세요: 세액?", "answer": "몰라요 1원"}
    write_jsonl(distill / "qa_pairs.jsonl", [pair, free])

    def example(pid, flags=()):
        return {
            "id": f"sft-{pid}",
            "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
            "meta": {"pair_id": pid, "style": "calculation", "doc_id": "d1", "flags": [{"rule": f} for f in flags]},
        }

    write_jsonl(build / "train.jsonl", [example("p2")])
    write_jsonl(build / "test.jsonl", [example("p1"), example("p1", ("calc_unverified",))])
    rows = dataset_rows(build, distill)
    assert [(row.split, row.facts.computation.payable) for row in rows] == [("test", 38_800_000)]
    write_jsonl(build / "val.jsonl", [example("missing")])
    with pytest.raises(SlmError, match="missing"):
        dataset_rows(build, distill)


def test_config_defaults_off_and_groups_must_fit_the_batch():
    cfg = load_config(None)
    assert cfg.reinforce.enabled is False and not stage_enabled(cfg, "reinforce") and stage_enabled(cfg, "train")
    assert STAGE_ORDER.index("reinforce") == STAGE_ORDER.index("train") + 1
    assert stage_enabled(load_config(None, ["reinforce.enabled=true"]), "reinforce")
    with pytest.raises(SlmError, match="num_generations"):
        load_config(None, ["reinforce.num_generations=3", "reinforce.micro_batch_size=4"])


def test_plan_terms_for_the_planner():
    cfg = load_config(None).reinforce  # 8 × 4 completions per step, 8 per group, 768 tokens
    plan = reinforce_plan(cfg, num_layers=34, num_kv_heads=4, head_dim=256, prompt_tokens=256)
    assert plan.completions_per_step == 32 and plan.prompts_per_step == 4
    assert plan.generated_tokens_per_step == 32 * 768 and plan.generated_tokens_total == 32 * 768 * cfg.max_steps
    assert plan.kv_cache_bytes == 2 * 34 * 4 * 256 * 2 * (256 + 768) * 32
    assert plan.reference.startswith("adapter copy") and plan.extra_forward_passes_per_step == 32
    no_ref = reinforce_plan(cfg.model_copy(update={"beta": 0.0}), num_layers=1, num_kv_heads=1, head_dim=1)
    assert no_ref.reference == "none" and no_ref.extra_forward_passes_per_step == 0


def test_wilson_interval():
    assert wilson(0, 0) == (0.0, 0.0)
    low, high = wilson(8, 10)
    assert low < 0.8 < high and round(low, 2) == 0.49 and round(high, 2) == 0.94


def test_slm_plan_covers_the_reinforce_stage_when_enabled():
    import json

    from typer.testing import CliRunner

    from slm_forest.cli import app

    config = str(Path(__file__).resolve().parent.parent / "configs" / "gemma-3-12b-qlora.yaml")
    args = ["plan", config, "--tokens", "100000", "--json"]
    off = CliRunner().invoke(app, args)
    assert off.exit_code == 0, off.output
    assert json.loads(off.stdout)["reinforce"] is None
    on = CliRunner().invoke(app, [*args, "--set", "reinforce.enabled=true", "--set", "reinforce.beta=0"])
    plan = json.loads(on.stdout)["reinforce"]
    # 8 × 4 completions per step, 768 tokens each; Gemma 3 12B: 48 layers, 8 KV heads of 256, bf16
    assert plan["completions_per_step"] == 32 and plan["generated_tokens_per_step"] == 32 * 768
    assert plan["kv_cache_bytes"] == 2 * 48 * 8 * 256 * 2 * (256 + 768) * 32 and plan["reference"] == "none"
    table = CliRunner().invoke(app, ["plan", config, "--tokens", "100000", "--set", "reinforce.enabled=true"])
    assert "reinforce (GRPO): 4 prompts" in table.output
