"""Training chat templates: how a conversation becomes tokens, and which of them the loss is computed on.

Assistant-only loss (TRL's `assistant_only_loss=True`) needs `{% generation %}…{% endgeneration %}` around the
assistant's text in the chat template; the end-of-turn token must sit *inside* that block, or the model never learns
to stop. What the installed TRL 1.16 does on its own (checked in `trl/chat_template_utils.py`): it swaps in a
training template only when the tokenizer's template is byte-for-byte one it knows (gemma3, phi3, llama3, qwen…);
anything else without markers raises "not training-compatible", and a tokenizer without a template (Phi-2) fails
with a TypeError. So the choice is made here, explicitly, and the chosen template is saved with the tokenizer:

- `train.chat_template` (a .jinja file) wins when set;
- a template that already has generation markers is kept (our tiny models ship one);
- Gemma 3 (`<start_of_turn>user … <end_of_turn>` / `<start_of_turn>model …`): `GEMMA_TRAINING_TEMPLATE`, which renders
  text conversations exactly like Google's template (system text folded into the first user turn, contents trimmed)
  with the answer and its `<end_of_turn>\n` inside the generation block. The train stage verifies on the run's own
  examples that it renders the same text as the tokenizer's original template, so inference sees what training saw;
- Phi-2 (base model, no template): `PHI2_TRAINING_TEMPLATE`, the "Instruct: …\nOutput: …" format of the Phi-2 model
  card; the answer is preceded by one space (BPE tokens carry their leading space, so the generation prompt ends at
  "Output:" and the model generates " answer…") and ends with the tokenizer's eos (`<|endoftext|>`), which is Phi-2's
  end of turn;
- otherwise TRL's own training version of a known template, or an error naming `train.chat_template`.

Inference (`add_generation_prompt=True`) renders the same prompt text; the markers are ignored there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slm_forest.errors import SlmError


def _turns_header(system_separator: str) -> str:
    """Shared opening of our training templates: an optional system message becomes a prefix of the first user
    turn (joined by `system_separator`), then the loop over turns with a strict user/assistant alternation check."""
    return (
        "{%- if messages and messages[0]['role'] == 'system' -%}"
        "{%- set system_prefix = (messages[0]['content'] | trim) + '" + system_separator + "' -%}"
        "{%- set turns = messages[1:] -%}"
        "{%- else -%}"
        "{%- set system_prefix = '' -%}"
        "{%- set turns = messages -%}"
        "{%- endif -%}"
        "{%- for message in turns -%}"
        "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}"
        "{{- raise_exception('roles must alternate user/assistant/user/… after an optional system message') -}}"
        "{%- endif -%}"
    )


# Gemma 3 conversation format. Roles must alternate user/assistant after an optional system message.
GEMMA_TRAINING_TEMPLATE = (
    "{{ bos_token }}" + _turns_header("\n\n") + "{%- if message['role'] == 'assistant' -%}"
    "{{- '<start_of_turn>model\n' -}}"
    "{%- generation -%}"
    "{{- message['content'] | trim -}}"
    "{{- '<end_of_turn>\n' -}}"
    "{%- endgeneration -%}"
    "{%- else -%}"
    "{{- '<start_of_turn>' + message['role'] + '\n' -}}"
    "{%- if loop.first -%}{{- system_prefix -}}{%- endif -%}"
    "{{- message['content'] | trim -}}"
    "{{- '<end_of_turn>\n' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<start_of_turn>model\n' -}}{%- endif -%}"
)

# Phi-2's documented QA format ("Instruct: <prompt>\nOutput:"), one exchange per turn; eos closes each answer.
PHI2_TRAINING_TEMPLATE = (
    _turns_header("\n") + "{%- if message['role'] == 'assistant' -%}"
    "{{- 'Output:' -}}"
    "{%- generation -%}"
    "{{- ' ' + (message['content'] | trim) + eos_token -}}"
    "{%- endgeneration -%}"
    "{{- '\n' -}}"
    "{%- else -%}"
    "{{- 'Instruct: ' -}}"
    "{%- if loop.first -%}{{- system_prefix -}}{%- endif -%}"
    "{{- (message['content'] | trim) + '\n' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- 'Output:' -}}{%- endif -%}"
)


@dataclass(frozen=True)
class TemplateChoice:
    template: str
    source: str  # "config:<path>", "tokenizer", "slm:gemma3", "slm:phi2", "trl:<known template>"
    original: str | None  # the tokenizer's own template when it was replaced (checked for identical rendering)


_GENERATION_OPEN = re.compile(r"\{%-?\s*generation\s*-?%\}")
_GENERATION_CLOSE = re.compile(r"\{%-?\s*endgeneration\s*-?%\}")


def has_generation_markers(template: str | None) -> bool:
    return bool(template) and bool(_GENERATION_OPEN.search(template)) and bool(_GENERATION_CLOSE.search(template))


def _tokenizer_template(tokenizer: Any) -> str | None:
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):  # named variants: the default one is used for chat
        template = template.get("default")
    return template or None


def choose_training_template(tokenizer: Any, model_type: str, override_path: str | None = None) -> TemplateChoice:
    """Pick the training chat template for this tokenizer/model (see the module docstring for the order)."""
    original = _tokenizer_template(tokenizer)
    if override_path:
        path = Path(override_path)
        if not path.is_file():
            raise SlmError(f"train.chat_template: {path} not found", "point it at a .jinja file")
        template = path.read_text(encoding="utf-8")
        if not has_generation_markers(template):
            raise SlmError(
                f"train.chat_template: {path} has no {{% generation %}} markers",
                "wrap the assistant content and its end-of-turn token in {% generation %}…{% endgeneration %}",
            )
        return TemplateChoice(template, f"config:{path}", None)
    if has_generation_markers(original):
        return TemplateChoice(original, "tokenizer", None)
    vocab = tokenizer.get_vocab()
    if model_type.startswith("gemma3") or (
        original and "<start_of_turn>" in original and "<start_of_turn>" in vocab and "<end_of_turn>" in vocab
    ):
        return TemplateChoice(GEMMA_TRAINING_TEMPLATE, "slm:gemma3", original)
    if model_type == "phi" and original is None:
        return TemplateChoice(PHI2_TRAINING_TEMPLATE, "slm:phi2", None)
    if original is None:
        raise SlmError(
            f"the tokenizer of this {model_type} model has no chat template",
            "set train.chat_template to a .jinja file with {% generation %}…{% endgeneration %} around the answers",
        )
    from trl.chat_template_utils import get_training_chat_template

    try:
        patched = get_training_chat_template(tokenizer)
    except ValueError:
        raise SlmError(
            f"the chat template of this {model_type} model has no {{% generation %}} markers and TRL has no "
            "training version of it",
            "set train.chat_template to a .jinja file with {% generation %}…{% endgeneration %} around the answers",
        ) from None
    if patched is None:
        return TemplateChoice(original, "tokenizer", None)
    return TemplateChoice(patched, "trl", original)


def render(tokenizer: Any, messages: list[dict[str, str]], template: str, **kwargs: Any) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, chat_template=template, **kwargs)


def check_same_rendering(tokenizer: Any, choice: TemplateChoice, conversations: list[list[dict[str, str]]]) -> None:
    """The training template must render our conversations exactly as the model's own template does."""
    if choice.original is None:
        return
    for index, messages in enumerate(conversations):
        for prompt_only in (False, True):
            convo = messages[:-1] if prompt_only and messages[-1]["role"] == "assistant" else messages
            try:
                ours = render(tokenizer, convo, choice.template, add_generation_prompt=prompt_only)
                theirs = render(tokenizer, convo, choice.original, add_generation_prompt=prompt_only)
            except Exception as exc:  # noqa: BLE001 - a template error is a user-fixable template problem
                raise SlmError(
                    f"train example {index}: the chat template failed to render it ({exc})",
                    "check the roles (system?, then user/assistant alternating) or set train.chat_template",
                ) from None
            if ours != theirs:
                raise SlmError(
                    f"train example {index}: the training template ({choice.source}) renders differently from the "
                    "model's own chat template, so inference would see other text than training",
                    "set train.chat_template to the model's template with {% generation %} markers added",
                )
