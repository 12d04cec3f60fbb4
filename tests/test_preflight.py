"""Preflight and training chat templates: the checks that stop a run before it wastes GPU hours.

Every failure is planted on a real tokenizer (the tiny byte-level BPE) and must come back as one SlmError that
names the config key or the fix.
"""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import pytest

from slm_forest.errors import SlmError

SYSTEM = "당신은 한국 세법 전문가입니다. 관련 법령을 근거로 정확하게 답변하세요."
PAIRS = [
    ("증여세 과세가액은 어떻게 계산하나요?", "증여일 현재의 재산가액에서 증여재산에 담보된 채무를 뺀 금액입니다."),
    ("부가가치세 확정신고 기한은 언제인가요?", "과세기간이 끝난 후 25일 이내에 신고하고 납부해야 합니다."),
    ("법인세 중간예납은 누가 하나요?", "사업연도가 6개월을 초과하는 내국법인이 중간예납 의무를 집니다."),
]
TRL_TEMPLATES = Path(importlib.util.find_spec("trl").origin).parent / "chat_templates"


def conversation(question: str, answer: str, system: bool = True) -> list[dict[str, str]]:
    head = [{"role": "system", "content": SYSTEM}] if system else []
    return head + [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]


EXAMPLES = [(f"ex-{i}", conversation(q, a)) for i, (q, a) in enumerate(PAIRS)]


@pytest.fixture(scope="module")
def tokenizer():
    from fine_tuning.train.tiny import train_tokenizer

    texts = [SYSTEM] + [t for pair in PAIRS for t in pair]
    return train_tokenizer(texts * 20, vocab_size=600)


def preflight(tokenizer, template=None, examples=EXAMPLES, max_length=512, end_of_turn="<end_of_turn>", **policy):
    from fine_tuning.train.preflight import run_preflight

    return run_preflight(
        tokenizer,
        examples,
        template=template or tokenizer.chat_template,
        end_of_turn_token=end_of_turn,
        max_length=max_length,
        **policy,
    )


def test_a_good_setup_passes_and_reports_what_is_trained(tokenizer):
    from fine_tuning.train.preflight import tokenize_examples

    report = preflight(tokenizer)
    assert set(report.checks) == {"generation_markers", "assistant_mask", "end_of_turn", "max_length", "pad_token"}
    assert report.examples == 3 and report.truncated_examples == 0
    assert 0.2 < report.trained_share < 0.8
    # the mask covers exactly the answer and its <end_of_turn>\n, never the prompt or the "model" header
    tokenized = tokenize_examples(tokenizer, EXAMPLES[:1], tokenizer.chat_template)[0]
    trained = tokenizer.decode([t for t, bit in zip(tokenized.input_ids, tokenized.assistant_mask) if bit])
    assert trained == PAIRS[0][1] + "<end_of_turn>\n"


def test_template_without_generation_markers_fails(tokenizer):
    template = tokenizer.chat_template.replace("{%- generation -%}", "").replace("{%- endgeneration -%}", "")
    with pytest.raises(SlmError, match=r"no \{% generation %\} markers.*train\.chat_template"):
        preflight(tokenizer, template)


def test_empty_assistant_mask_fails(tokenizer):
    # markers present, but wrapped around nothing
    template = tokenizer.chat_template.replace(
        "{%- generation -%}{{- message['content'] | trim -}}{{- '<end_of_turn>\n' -}}{%- endgeneration -%}",
        "{{- message['content'] | trim -}}{{- '<end_of_turn>\n' -}}{%- generation -%}{%- endgeneration -%}",
    )
    assert template != tokenizer.chat_template
    with pytest.raises(SlmError, match="assistant mask is empty"):
        preflight(tokenizer, template)


def test_example_without_an_answer_fails(tokenizer):
    unanswered = [("ex-q", [{"role": "user", "content": PAIRS[0][0]}])]
    with pytest.raises(SlmError, match="ex-q: the assistant mask is empty"):
        preflight(tokenizer, examples=unanswered)


def test_mask_covering_everything_fails(tokenizer):
    template = "{%- generation -%}" + tokenizer.chat_template + "{%- endgeneration -%}"
    template = template.replace("{%- generation -%}{{- message", "{{- message", 1)
    template = template.replace(
        "{{- '<end_of_turn>\n' -}}{%- endgeneration -%}{%- else", "{{- '<end_of_turn>\n' -}}{%- else", 1
    )
    with pytest.raises(SlmError, match="covers every token"):
        preflight(tokenizer, template)


def test_end_of_turn_outside_the_mask_fails(tokenizer):
    template = tokenizer.chat_template.replace(
        "{{- '<end_of_turn>\n' -}}{%- endgeneration -%}", "{%- endgeneration -%}{{- '<end_of_turn>\n' -}}"
    )
    assert template != tokenizer.chat_template
    with pytest.raises(SlmError, match="end-of-turn token '<end_of_turn>' is not trained"):
        preflight(tokenizer, template)


def test_pad_equal_to_eos_fails_unless_eos_is_trained(tokenizer):
    from fine_tuning.train.chat_templates import PHI2_TRAINING_TEMPLATE

    broken = copy.deepcopy(tokenizer)  # the module's tokenizer stays untouched
    broken.pad_token = broken.eos_token
    with pytest.raises(SlmError, match="pad = eos"):
        preflight(broken)
    # Phi-2's format ends each answer with eos inside the mask: pad = eos no longer hides the stop signal
    report = preflight(broken, PHI2_TRAINING_TEMPLATE, end_of_turn=broken.eos_token)
    assert report.checks["pad_token"].startswith("ok (pad = eos")


def test_prompt_longer_than_max_length_fails_naming_the_key(tokenizer):
    long_question = "소득세법 제12조 " * 40 + "비과세소득은 무엇인가요?"
    examples = EXAMPLES + [("ex-long", conversation(long_question, PAIRS[0][1]))]
    with pytest.raises(SlmError, match=r"ex-long: its prompt is \d+ tokens, so train\.max_length=64"):
        preflight(tokenizer, examples=examples, max_length=64)


LONG_ANSWER = "증여재산공제는 배우자 6억원, 직계존속 5천만원입니다. " * 20
WITH_ONE_LONG = EXAMPLES + [("ex-long-answer", conversation(PAIRS[0][0], LONG_ANSWER))]


def test_answers_cut_short_within_the_allowed_share_are_counted(tokenizer):
    report = preflight(tokenizer, examples=WITH_ONE_LONG, max_length=96, max_truncated_share=0.5)
    assert report.truncated_examples == 1 and report.truncated_share == round(1 / len(WITH_ONE_LONG), 4)
    assert "1 answers" in report.checks["max_length"] and "limit 50.0%" in report.checks["max_length"]
    assert report.truncated_ids == ["ex-long-answer"] and report.dropped_truncated == 0


def test_answers_cut_above_the_share_stop_with_the_max_length_that_fixes_it(tokenizer):
    from fine_tuning.train.preflight import tokenize_examples

    with pytest.raises(SlmError) as info:
        preflight(tokenizer, examples=WITH_ONE_LONG, max_length=96, max_truncated_share=0.01)
    longest = max(len(ex.input_ids) for ex in tokenize_examples(tokenizer, WITH_ONE_LONG, tokenizer.chat_template))
    assert "train.max_truncated_share=1.0%" in str(info.value) and "end-of-turn" in str(info.value)
    assert f"raise train.max_length to {longest}" in info.value.hint and "train.truncated: drop" in info.value.hint
    # The suggested max_length is enough: nothing is cut there.
    assert preflight(tokenizer, examples=WITH_ONE_LONG, max_length=longest).truncated_examples == 0


def test_truncated_drop_reports_the_cut_examples_for_the_stage_to_leave_out(tokenizer):
    report = preflight(
        tokenizer, examples=WITH_ONE_LONG, max_length=96, max_truncated_share=0.0, truncated_policy="drop"
    )
    assert report.truncated_ids == ["ex-long-answer"] and report.dropped_truncated == 1
    assert "dropped" in report.checks["max_length"]
    with pytest.raises(SlmError, match="every example is longer"):
        preflight(tokenizer, examples=WITH_ONE_LONG[-1:], max_length=96, truncated_policy="drop")


def test_missing_end_of_turn_token_names_the_registry(tokenizer):
    with pytest.raises(SlmError, match="not in the tokenizer's vocabulary"):
        preflight(tokenizer, end_of_turn="<|im_end|>")


# --------------------------------------------------------------------------------------------- chat templates
CONVERSATIONS = [
    conversation(*PAIRS[0]),
    conversation(*PAIRS[1], system=False),
    conversation(*PAIRS[0])
    + [
        {"role": "user", "content": " 그럼 채무가 더 크면요? "},
        {"role": "assistant", "content": "과세가액은 0원입니다.\n"},
    ],
]


@pytest.mark.parametrize("index", range(len(CONVERSATIONS)))
def test_gemma_training_template_renders_like_googles_gemma3_template(tokenizer, index):
    """Google's Gemma 3 template (as shipped inside TRL) is the reference for inference-time text."""
    from fine_tuning.train.chat_templates import GEMMA_TRAINING_TEMPLATE, render

    original = (TRL_TEMPLATES / "gemma3.jinja").read_text(encoding="utf-8")
    messages = CONVERSATIONS[index]
    assert render(tokenizer, messages, GEMMA_TRAINING_TEMPLATE) == render(tokenizer, messages, original)
    prompt = messages[:-1]
    assert render(tokenizer, prompt, GEMMA_TRAINING_TEMPLATE, add_generation_prompt=True) == render(
        tokenizer, prompt, original, add_generation_prompt=True
    )


def test_real_gemma3_template_is_replaced_by_ours_and_checked(tokenizer):
    from fine_tuning.train.chat_templates import GEMMA_TRAINING_TEMPLATE, check_same_rendering, choose_training_template

    gemma = copy.deepcopy(tokenizer)
    gemma.chat_template = (TRL_TEMPLATES / "gemma3.jinja").read_text(encoding="utf-8")
    choice = choose_training_template(gemma, "gemma3")
    assert choice.template == GEMMA_TRAINING_TEMPLATE and choice.source == "slm:gemma3"
    check_same_rendering(gemma, choice, CONVERSATIONS)  # identical text: no error
    # and a template whose rendering differs is caught before training
    drifted = copy.deepcopy(gemma)
    drifted.chat_template = gemma.chat_template.replace("'<start_of_turn>' + role", "'<start_of_turn> ' + role")
    with pytest.raises(SlmError, match="renders differently.*train.chat_template"):
        check_same_rendering(drifted, choose_training_template(drifted, "gemma3"), CONVERSATIONS)


def test_phi2_gets_the_instruct_output_template_with_eos_trained(tokenizer):
    from fine_tuning.train.chat_templates import choose_training_template, render
    from fine_tuning.train.preflight import tokenize_examples

    phi = copy.deepcopy(tokenizer)
    phi.chat_template = None
    choice = choose_training_template(phi, "phi")
    assert choice.source == "slm:phi2"
    text = render(phi, CONVERSATIONS[0], choice.template)
    assert text == f"Instruct: {SYSTEM}\n{PAIRS[0][0]}\nOutput: {PAIRS[0][1]}{phi.eos_token}\n"
    prompt = render(phi, CONVERSATIONS[0][:-1], choice.template, add_generation_prompt=True)
    assert prompt.endswith("\nOutput:") and text.startswith(prompt)
    tokenized = tokenize_examples(phi, [("x", CONVERSATIONS[0])], choice.template)[0]
    trained = phi.decode([t for t, bit in zip(tokenized.input_ids, tokenized.assistant_mask) if bit])
    assert trained == " " + PAIRS[0][1] + phi.eos_token


def test_unknown_template_without_markers_asks_for_train_chat_template(tokenizer, tmp_path):
    from fine_tuning.train.chat_templates import choose_training_template

    odd = copy.deepcopy(tokenizer)
    odd.chat_template = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    with pytest.raises(SlmError, match="train.chat_template"):
        choose_training_template(odd, "llama")
    plain = tmp_path / "plain.jinja"
    plain.write_text(odd.chat_template, encoding="utf-8")
    with pytest.raises(SlmError, match=r"train\.chat_template: .* has no \{% generation %\} markers"):
        choose_training_template(odd, "llama", str(plain))
    marked = tmp_path / "marked.jinja"
    marked.write_text(tokenizer.chat_template, encoding="utf-8")
    assert choose_training_template(odd, "llama", str(marked)).source == f"config:{marked}"


def test_our_gemma_template_masks_exactly_like_trls_gemma3_training_template(tokenizer):
    """What TRL would swap in for Google's exact template gives the same tokens and the same loss mask as ours."""
    from fine_tuning.train.chat_templates import GEMMA_TRAINING_TEMPLATE
    from fine_tuning.train.preflight import tokenize_examples

    trl_training = (TRL_TEMPLATES / "gemma3_training.jinja").read_text(encoding="utf-8")
    examples = [(str(i), messages) for i, messages in enumerate(CONVERSATIONS)]
    ours = tokenize_examples(tokenizer, examples, GEMMA_TRAINING_TEMPLATE)
    theirs = tokenize_examples(tokenizer, examples, trl_training)
    assert [(e.input_ids, e.assistant_mask) for e in ours] == [(e.input_ids, e.assistant_mask) for e in theirs]


def test_end_of_turn_token_per_model(tokenizer):
    from fine_tuning.plan.registry import get_model_spec
    from fine_tuning.train.chat_templates import choose_training_template
    from fine_tuning.train.checks import end_of_turn_token

    tiny_phi, gemma = get_model_spec("tiny-random-phi"), get_model_spec("gemma-3-12b-it")
    ours = choose_training_template(tokenizer, "phi")  # the tiny tokenizer's Gemma-format template
    assert end_of_turn_token(gemma, ours, tokenizer) == "<end_of_turn>"
    assert end_of_turn_token(tiny_phi, ours, tokenizer) == "<end_of_turn>"  # the template decides for tiny Phi
    phi2 = copy.deepcopy(tokenizer)
    phi2.chat_template = None
    assert end_of_turn_token(get_model_spec("phi-2"), choose_training_template(phi2, "phi"), phi2) == phi2.eos_token
