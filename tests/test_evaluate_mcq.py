"""Multiple-choice scoring by option log-likelihood (KMMLU format): file reading, shots, the scoring math, real models."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from fine_tuning.evaluate.mcq import (
    MCQuestion,
    build_prompt,
    continuation,
    dev_file_for,
    option_logliks,
    read_benchmark,
    split_shots,
)
from slm_forest.errors import SlmError

HEADER = "question,answer,A,B,C,D,Category,Human Accuracy\n"


# ------------------------------------------------------------------------------------------------- file handling
def test_read_benchmark_and_errors_name_file_and_line(tmp_path):
    good = tmp_path / "Tax-test.csv"
    good.write_text(HEADER + '"부가가치세, 신고 기한은?",2,10일,25일,30일,60일,Taxation,0.5\n', encoding="utf-8")
    (question,) = read_benchmark(good)
    assert question.question == "부가가치세, 신고 기한은?" and question.options[1] == "25일" and question.answer == 1

    bad_answer = tmp_path / "bad.csv"
    bad_answer.write_text(HEADER + "q1,1,a,b,c,d,T,0\nq2,5,a,b,c,d,T,0\n", encoding="utf-8")
    with pytest.raises(SlmError, match=r"bad\.csv:3: answer '5' is not one of 4 options"):
        read_benchmark(bad_answer)

    gap = tmp_path / "cols.csv"
    gap.write_text("question,answer,A,B,D\nq,1,a,b,c\n", encoding="utf-8")
    with pytest.raises(SlmError, match=r"cols\.csv:1: option columns A,B,D are not contiguous"):
        read_benchmark(gap)
    one = tmp_path / "one.csv"
    one.write_text("question,answer,A\nq,1,a\n", encoding="utf-8")
    with pytest.raises(SlmError, match=r"one\.csv:1: 1 option column"):
        read_benchmark(one)
    missing = tmp_path / "missing.csv"
    missing.write_text("question,A,B\nq,a,b\n", encoding="utf-8")
    with pytest.raises(SlmError, match=r"missing\.csv:1: missing column\(s\) answer"):
        read_benchmark(missing)


FIXTURES = Path(__file__).parent / "fixtures" / "benchmarks"


def test_five_option_and_true_false_files_with_numbers_letters_and_circled_answers():
    five = read_benchmark(FIXTURES / "TaxExam5-test.csv")
    assert len(five) == 12 and all(len(q.options) == 5 for q in five)
    # answers written 2, C, 4, ①, 3, b, 5, …, D
    assert [q.answer for q in five[:7]] == [1, 2, 3, 0, 2, 1, 4] and five[-1].answer == 3
    assert {q.category for q in five} == {"부가가치세", "소득세", "증여세"}
    ox = read_benchmark(FIXTURES / "TaxOX-test.csv")
    assert all(q.options == ("참", "거짓") for q in ox)
    assert [q.answer for q in ox[:4]] == [0, 1, 0, 1]


@pytest.mark.parametrize("answer", ["1,3", "A,C", "AC", "1 3", "2/4", "1및3"])
def test_multiple_answer_rows_are_rejected_with_file_and_line(tmp_path, answer):
    path = tmp_path / "multi.csv"
    path.write_text(f'question,answer,A,B,C,D,E\nq1,2,a,b,c,d,e\nq2,"{answer}",a,b,c,d,e\n', encoding="utf-8")
    with pytest.raises(SlmError, match=r"multi\.csv:3: answer .* names several options"):
        read_benchmark(path)


def test_rows_must_fill_every_option_column(tmp_path):
    path = tmp_path / "short.csv"
    path.write_text("question,answer,A,B,C,D,E\nq1,2,a,b,c,d,\n", encoding="utf-8")
    with pytest.raises(SlmError, match=r"short\.csv:2: empty option E"):
        read_benchmark(path)
    categoryless = tmp_path / "Law-test.csv"
    categoryless.write_text("question,answer,A,B\nq1,2,a,b\n", encoding="utf-8")
    assert read_benchmark(categoryless)[0].category == "Law"  # the file's subject when there is no Category


def test_shots_come_from_the_dev_file_beside_or_from_the_first_rows(shared_dir, tmp_path):
    kmmlu = shared_dir / "benchmarks" / "kmmlu"
    test_file = kmmlu / "Taxation-test.csv"
    assert dev_file_for(test_file) == kmmlu / "Taxation-dev.csv"
    questions = read_benchmark(test_file)
    shots, scored, source = split_shots(test_file, questions, 2)
    assert source == "Taxation-dev.csv" and len(shots) == 2 and scored == questions

    # no Law-dev.csv beside the Law subset: shots are its first rows, and they are not scored
    law = kmmlu / "Law-test.tax_keyword_subset.csv"
    assert dev_file_for(law) is None
    law_questions = read_benchmark(law)
    shots, scored, source = split_shots(law, law_questions, 3)
    assert shots == law_questions[:3] and scored == law_questions[3:] and source.startswith("first 3 rows")

    # the dev file itself: its own first rows
    dev = kmmlu / "Taxation-dev.csv"
    assert dev_file_for(dev) is None
    with pytest.raises(SlmError, match="few_shot=5"):
        split_shots(dev, read_benchmark(dev), 5)


def test_prompt_shows_solved_shots_then_the_question():
    shot = MCQuestion("세금은?", ("가", "나", "다", "라"), 2, 1)
    question = MCQuestion("기한은?", ("1일", "2일", "3일", "4일"), 0, 2)
    assert build_prompt(question, [shot]) == "질문: 세금은?\n답: 다\n\n질문: 기한은?\n답:"


# ------------------------------------------------------------------------------------------------ scoring math
class CharTokenizer:
    """One token per character (id = position in the alphabet + 1); 0 is padding."""

    pad_token_id = 0

    def __init__(self, alphabet: str) -> None:
        self.ids = {c: i + 1 for i, c in enumerate(alphabet)}

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict:
        return {"input_ids": [self.ids[c] for c in text]}


class BigramStub:
    """Stands in for a causal LM in this unit test only: the next-token logits at a position are a fixed row
    of `table` chosen by the token at that position, so every expected log-likelihood can be computed by hand.
    Padding, position ids and `logits_to_keep` are honoured like a transformers model does."""

    def __init__(self, table):
        self.table = table
        self.config = SimpleNamespace(max_position_embeddings=512)
        self.calls = []

    def parameters(self):
        yield self.table

    def __call__(self, input_ids, attention_mask, position_ids, logits_to_keep, use_cache):
        self.calls.append({"ids": input_ids, "mask": attention_mask, "positions": position_ids, "keep": logits_to_keep})
        logits = self.table[input_ids]  # (batch, width, vocab)
        return SimpleNamespace(logits=logits[:, -logits_to_keep:, :])


def _expected(table, context_ids, option_ids):
    import torch

    total, previous = 0.0, context_ids[-1]
    for token in option_ids:
        total += float(torch.log_softmax(table[previous], -1)[token])
        previous = token
    return total


def test_scorer_sums_option_token_logprobs_and_picks_the_highest():
    import torch

    alphabet = "질문:답 가나다라마?\n"
    tokenizer = CharTokenizer(alphabet)
    torch.manual_seed(0)
    table = torch.randn(len(alphabet) + 1, len(alphabet) + 1)
    # force the answer: after " " the model strongly expects "다", and after "다" another "다"
    table[tokenizer.ids[" "], tokenizer.ids["다"]] = 12.0
    table[tokenizer.ids["다"], tokenizer.ids["다"]] = 12.0
    model = BigramStub(table)
    prompt = "질문: 가나?\n답:"
    options = ["가나다라", "나", "다다다", "마가"]  # different lengths: left padding must not shift anything

    scores = option_logliks(model, tokenizer, prompt, options)

    context = tokenizer(prompt)["input_ids"]
    for option, got in zip(options, scores.loglik):
        assert got == pytest.approx(_expected(table, context, tokenizer(continuation(option))["input_ids"]), abs=1e-5)
    assert scores.pick == 2  # "다다다": every token forced
    assert scores.pick == max(range(4), key=lambda i: scores.loglik[i])
    norm = [scores.loglik[i] / len(options[i]) for i in range(4)]
    assert scores.pick_norm == max(range(4), key=lambda i: norm[i])
    call = model.calls[0]
    assert call["keep"] == len(continuation("가나다라")) + 1  # only the logits that are needed
    assert call["mask"][1].tolist()[0] == 0 and call["positions"][1].tolist()[-1] == len(context) + 1


def test_length_normalisation_can_change_the_pick():
    import torch

    tokenizer = CharTokenizer("질문:답 가나")
    table = torch.zeros(8, 8)
    table[tokenizer.ids[" "], tokenizer.ids["가"]] = 3.0  # a likely first token …
    table[tokenizer.ids["가"], tokenizer.ids["가"]] = 2.0  # … and a likely continuation
    scores = option_logliks(BigramStub(table), tokenizer, "질문:답", ["나", "가가가가가가"])
    assert scores.pick == 0  # one cheap token beats six
    assert scores.pick_norm == 1  # per character the long option is far more likely


# -------------------------------------------------------------------------------------------------- real models
def _plain_logliks(model, tokenizer, prompt, options):
    """Reference computation: one unpadded sequence per option, full logits, no position tricks."""
    import torch

    context = tokenizer(prompt, add_special_tokens=True)["input_ids"]
    out = []
    for option in options:
        cont = tokenizer(continuation(option), add_special_tokens=False)["input_ids"]
        ids = torch.tensor([context + cont])
        with torch.no_grad():
            logprobs = torch.log_softmax(model(input_ids=ids).logits.float(), -1)[0]
        out.append(sum(float(logprobs[len(context) - 1 + j, t]) for j, t in enumerate(cont)))
    return out


@pytest.mark.parametrize("kind", ["tiny-random-phi", "tiny-random-gemma3"])
def test_padded_scoring_equals_plain_forward_on_tiny_models(kind, shared_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from fine_tuning.train.tiny import build_tiny_model

    dev = shared_dir / "benchmarks" / "kmmlu" / "Taxation-dev.csv"
    questions = read_benchmark(dev)
    texts = [q.question for q in questions] + [o for q in questions for o in q.options]
    path = build_tiny_model(kind, tmp_path / kind, texts * 4, seed=1)
    model, tokenizer = AutoModelForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)
    question = questions[1]
    prompt = build_prompt(question, [questions[0]])
    scores = option_logliks(model, tokenizer, prompt, list(question.options))
    plain = _plain_logliks(model, tokenizer, prompt, list(question.options))
    assert list(scores.loglik) == pytest.approx(plain, abs=2e-4)
    assert scores.pick == max(range(4), key=lambda i: plain[i])
    assert all(math.isfinite(v) and v < 0 for v in scores.loglik)


def _bench_cfg(paths, few_shot, harness=False, harness_few_shot=5):
    return SimpleNamespace(
        benchmarks=[str(p) for p in paths],
        few_shot=few_shot,
        harness=harness,
        harness_few_shot=harness_few_shot,
        bootstrap_resamples=200,
        batch_size=4,
    )


def test_benchmark_run_on_kmmlu_taxation_dev_for_base_and_tuned(shared_dir, tmp_path, tmp_path_factory):
    from fine_tuning.evaluate.benchmarks import run_benchmarks
    from fine_tuning.train.loading import load_trained
    from tests.test_evaluate_tiny import tiny_run

    dev = shared_dir / "benchmarks" / "kmmlu" / "Taxation-dev.csv"
    model, tokenizer = load_trained(tiny_run(tmp_path_factory) / "train", device="cpu")
    summaries, rows, files = run_benchmarks(model, tokenizer, _bench_cfg([dev], 1), tmp_path, 0)
    (summary,) = summaries
    assert summary["questions"] == 5 and summary["options"] == 4 and files == [dev]
    keys = [p["key"] for p in summary["protocols"]]
    assert keys == ["cloze-0", "cloze-0-norm", "cloze-1", "cloze-1-norm"]  # harness off
    zero, _, one, _ = summary["protocols"]
    assert zero["shots_from"] == "none" and one["shots_from"].startswith("first 1 rows")
    # both settings, on the same four questions
    assert len(rows) == 8 and {(r["protocol"], r["row"]) for r in rows} == {
        (f"cloze-{k}", i) for k in (0, 1) for i in (2, 3, 4, 5)
    }
    for protocol, setting in ((zero, "cloze-0"), (one, "cloze-1")):
        chosen = [r for r in rows if r["protocol"] == setting]
        for which in ("base", "tuned"):
            picks = [r[which]["pick"] for r in chosen]
            assert picks == [1 + max(range(4), key=lambda i: r[which]["loglik"][i]) for r in chosen]
            correct = sum(p == r["answer"] for p, r in zip(picks, chosen))
            assert protocol["n"] == 4 and protocol[which]["correct"] == correct
            assert protocol[which]["micro"] == pytest.approx(correct / 4)
            low, high = protocol[which]["micro_ci95"]
            assert low <= correct / 4 <= high
    # zero-shot really has no solved example in the prompt, few-shot has the first row
    questions = read_benchmark(dev)
    zero_row = next(r for r in rows if r["protocol"] == "cloze-0" and r["row"] == 2)
    one_row = next(r for r in rows if r["protocol"] == "cloze-1" and r["row"] == 2)
    with model.disable_adapter():
        plain = option_logliks(model, tokenizer, build_prompt(questions[1], []), list(questions[1].options))
        shot = option_logliks(model, tokenizer, build_prompt(questions[1], questions[:1]), list(questions[1].options))
    assert zero_row["base"]["loglik"] == pytest.approx([round(v, 4) for v in plain.loglik], abs=1e-4)
    assert one_row["base"]["loglik"] == pytest.approx([round(v, 4) for v in shot.loglik], abs=1e-4)
    assert zero_row["base"]["loglik"] != one_row["base"]["loglik"]
    # the adapter is switched off for the base: the two models score differently
    assert [r["base"]["loglik"] for r in rows] != [r["tuned"]["loglik"] for r in rows]


def test_harness_letter_protocol_on_five_option_and_true_false_files(tmp_path, tmp_path_factory):
    pytest.importorskip("lm_eval")
    from fine_tuning.evaluate.benchmarks import run_benchmarks
    from fine_tuning.train.loading import load_trained
    from tests.test_evaluate_tiny import tiny_run

    model, tokenizer = load_trained(tiny_run(tmp_path_factory) / "train", device="cpu")
    paths = [FIXTURES / "TaxExam5-test.csv", FIXTURES / "TaxOX-test.csv"]
    cfg = _bench_cfg(paths, 0, harness=True, harness_few_shot=2)
    summaries, _, _ = run_benchmarks(model, tokenizer, cfg, tmp_path, 0)
    for summary, options in zip(summaries, (5, 2)):
        harness = summary["protocols"][0]
        assert harness["key"] == "harness" and "lm-evaluation-harness" in harness["protocol"]
        assert "2-shot" in harness["protocol"] and harness["shots_from"].startswith("first 2 rows")
        assert harness["n"] == 10  # 12 rows, the first two are the shots
        assert summary["options"] == options and summary["chance"] == pytest.approx(1 / options, abs=1e-4)
        # the generated task config points at the user's file, with one letter per option
        task = yaml.safe_load(Path(harness["task_config"]).read_text(encoding="utf-8"))
        assert task["dataset_path"] == "csv" and task["dataset_kwargs"]["data_files"]["test"] == str(
            paths[options == 2].resolve()
        )
        assert task["doc_to_choice"] == list("ABCDE"[:options])
        for which in ("base", "tuned"):
            block = harness[which]
            cats = block["by_category"]
            assert sum(c["n"] for c in cats.values()) == 10
            assert block["micro"] == pytest.approx(block["correct"] / 10)
            assert block["macro"] == pytest.approx(sum(c["accuracy"] for c in cats.values()) / len(cats), abs=1e-4)
        assert harness["delta_micro"]["delta"] == pytest.approx(harness["tuned"]["micro"] - harness["base"]["micro"])


def test_shot_counts():
    from fine_tuning.evaluate.mcq import shot_counts

    assert shot_counts(0) == [0] and shot_counts(5) == [0, 5]
