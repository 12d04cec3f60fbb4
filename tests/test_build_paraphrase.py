"""Paraphrased questions: the labelled set fixes the threshold and its precision/recall; the build rejects rewordings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from slm_datagen.collect.bundled import iter_bundled
from slm_datagen.dataset.duplicates import find_duplicates
from slm_datagen.dataset.korean import char_ngrams, jaccard, match_key
from slm_datagen.dataset.paraphrase import (
    BOILERPLATE_SENTENCES,
    PARAPHRASE_PRECISION,
    PARAPHRASE_RECALL,
    PARAPHRASE_SET,
    PARAPHRASE_THRESHOLD,
    paraphrase_similarity,
    question_terms,
)
from slm_datagen.distill.offline import offline_pair
from slm_datagen.prepare.chunk import chunk_document
from tests.test_build_checks import GOOD_ANSWER, make_pair

LABELLED = Path(__file__).parent / "fixtures" / "paraphrase_question_pairs.jsonl"


def labelled() -> list[dict]:
    return [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines() if line.strip()]


def scores() -> list[tuple[float, bool]]:
    return [
        (paraphrase_similarity(question_terms(r["a"]), question_terms(r["b"])), r["paraphrase"]) for r in labelled()
    ]


def precision_recall(threshold: float) -> tuple[float, float]:
    scored = scores()
    tp = sum(1 for s, y in scored if s >= threshold and y)
    fp = sum(1 for s, y in scored if s >= threshold and not y)
    fn = sum(1 for s, y in scored if s < threshold and y)
    return tp / (tp + fp), tp / (tp + fn)


def test_the_labelled_set_is_large_enough_and_named_by_the_constants():
    rows = labelled()
    positives = sum(r["paraphrase"] for r in rows)
    assert len(rows) >= 60 and positives >= 30 and len(rows) - positives >= 30
    assert f"{positives} paraphrases, {len(rows) - positives} distinct" in PARAPHRASE_SET
    assert LABELLED.name in PARAPHRASE_SET
    assert all(r["why"] for r in rows) and len({(r["a"], r["b"]) for r in rows}) == len(rows)


def test_precision_and_recall_at_the_chosen_threshold_are_the_published_constants():
    precision, recall = precision_recall(PARAPHRASE_THRESHOLD)
    assert (precision, recall) == (PARAPHRASE_PRECISION, PARAPHRASE_RECALL)
    assert precision >= 0.95 and recall >= 0.95


def test_the_threshold_has_the_best_f1_on_the_set():
    def f1(threshold: float) -> float:
        p, r = precision_recall(threshold)
        return 2 * p * r / (p + r)

    chosen = f1(PARAPHRASE_THRESHOLD)
    assert all(f1(t / 100) <= chosen for t in range(50, 100, 5))


def test_character_ngrams_alone_miss_most_of_the_paraphrases():
    # the rule before this one: character 3-gram Jaccard >= 0.85
    def char_similarity(a: str, b: str) -> float:
        return jaccard(char_ngrams(match_key(a), 3), char_ngrams(match_key(b), 3))

    rows = [r for r in labelled() if r["paraphrase"]]
    assert sum(char_similarity(r["a"], r["b"]) >= 0.85 for r in rows) < len(rows) // 4
    assert all(
        paraphrase_similarity(question_terms(r["a"]), question_terms(r["b"])) >= PARAPHRASE_THRESHOLD for r in rows
    )


def test_rewordings_are_rejected_keeping_the_first_and_distinct_questions_stay():
    pairs = [
        make_pair("아버지에게 현금 2억원을 증여받았습니다. 증여세는 얼마인가요?", GOOD_ANSWER, id="first"),
        make_pair("아버지로부터 현금 2억원을 증여받았는데 증여세를 얼마나 내야 하나요?", GOOD_ANSWER, id="reworded"),
        make_pair(
            "아버지로부터 현금 3억원을 증여받았는데 증여세를 얼마나 내야 하나요?", GOOD_ANSWER, id="other-amount"
        ),
        make_pair("아버지에게 현금 2억원을 상속받았습니다. 상속세는 얼마인가요?", GOOD_ANSWER, id="inheritance"),
        make_pair("세금 문제로 궁금한 점이 있습니다. 증여세 신고기한은 언제까지인가요?", GOOD_ANSWER, id="lay-first"),
        make_pair("증여세는 언제까지 신고해야 하나요?", GOOD_ANSWER, id="expert-later"),
    ]
    found = find_duplicates(pairs, threshold=0.85)
    assert {i: f.rule for i, f in found.items()} == {1: "paraphrase", 5: "paraphrase"}
    assert "pair first" in found[1].details and "pair lay-first" in found[5].details


def test_the_offline_layperson_questions_are_new_questions_and_the_old_reworded_ones_are_still_caught():
    # The offline teacher used to ask the layperson variant as the expert question with a fixed sentence in front;
    # the rule must keep catching that, and the teacher's situation-first layperson questions must not be caught.
    docs = [d for _, ds in iter_bundled(["rulings"]) for d in ds][:30]
    new_pairs, old_pairs = [], []
    for n, doc in enumerate(docs):
        chunk = chunk_document(doc, 1500, 20).chunks[0]
        expert, lay = offline_pair(chunk, "expert"), offline_pair(chunk, "layperson")
        assert expert is not None and lay is not None
        assert not lay.question.startswith(BOILERPLATE_SENTENCES[0]) and lay.question != expert.question
        new_pairs += [make_pair(expert.question, expert.answer, id=f"{n}-expert"), make_pair(lay.question, lay.answer)]
        old = f"{BOILERPLATE_SENTENCES[0]} {expert.question}"
        old_pairs += [make_pair(expert.question, expert.answer, id=f"{n}-expert"), make_pair(old, lay.answer)]
    assert find_duplicates(new_pairs, threshold=0.85) == {}
    found = find_duplicates(old_pairs, threshold=0.85)
    assert set(found) == set(range(1, len(old_pairs), 2))  # every old-style variant, and nothing else
    assert all(found[i].details.startswith(f"question rewords pair {i // 2}-expert") for i in found)


def test_slm_help_does_not_load_the_morpheme_analyser():
    code = "import sys; from slm_forest.cli import app; print('kiwipiepy' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert out.strip() == "False"
