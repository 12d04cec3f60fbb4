"""An Ollama `Modelfile` for an exported model: FROM, the chat template in Go template syntax, stop tokens, system prompt.

Ollama does not read the Jinja chat template of a Hugging Face tokenizer; it needs its own TEMPLATE written in Go's
text/template language, and the PARAMETER stop strings that end a turn. The template family is recognised from the
tokenizer's chat template (the one saved by `slm train`), and the Go template written here renders conversations the
same way that Jinja template does:

- gemma  (`<start_of_turn>user … <end_of_turn>` / `<start_of_turn>model …`): system text folded into the first user
  turn followed by a blank line, every turn closed by `<end_of_turn>`; stop: `<end_of_turn>`;
- phi2   ("Instruct: …\\nOutput: …", the Phi-2 model card format used by `slm train` for Phi-2): system text on the
  first Instruct line, answers end with `<|endoftext|>`; stop: `<|endoftext|>` and `Instruct:`;
- chatml (`<|im_start|>role … <|im_end|>`, Qwen and others); stop: `<|im_end|>`.

No BOS is written: llama.cpp/Ollama add it from the model's tokenizer metadata. Another template family gives no
Modelfile (the export stage says so) rather than a wrong one.

What was not run here: Ollama itself (`ollama create -f Modelfile`). The templates were checked by rendering them with
a small Go-template subset interpreter in the tests against the Jinja templates; FROM a safetensors directory works
only for the architectures `ollama create` can convert (Gemma 1/2/3, Llama, Mistral, Phi-3 …, not Phi-2): for the
others convert to GGUF first (`export.gguf`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from slm_forest.files import atomic_writer

# Shared preamble: Ollama puts a system message (from SYSTEM or the request) into .Messages; remember the last one.
_SYSTEM = """{{- $system := "" }}
{{- range .Messages }}{{ if eq .Role "system" }}{{ $system = .Content }}{{ end }}{{ end }}
{{- $first := true }}
"""

GEMMA_TEMPLATE = (
    _SYSTEM
    + """{{- range $i, $_ := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 }}
{{- if eq .Role "user" }}<start_of_turn>user
{{ if and $first $system }}{{ $system }}

{{ end }}{{ .Content }}<end_of_turn>
{{ $first = false }}
{{- if $last }}<start_of_turn>model
{{ end }}
{{- else if eq .Role "assistant" }}<start_of_turn>model
{{ .Content }}{{ if not $last }}<end_of_turn>
{{ end }}
{{- end }}
{{- end }}"""
)

PHI2_TEMPLATE = (
    _SYSTEM
    + """{{- range $i, $_ := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 }}
{{- if eq .Role "user" }}Instruct: {{ if and $first $system }}{{ $system }}
{{ end }}{{ .Content }}
{{ $first = false }}
{{- if $last }}Output:{{ end }}
{{- else if eq .Role "assistant" }}Output: {{ .Content }}{{ if not $last }}<|endoftext|>
{{ end }}
{{- end }}
{{- end }}"""
)

CHATML_TEMPLATE = """{{- range $i, $_ := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 }}<|im_start|>{{ .Role }}
{{ .Content }}{{ if not (and $last (eq .Role "assistant")) }}<|im_end|>
{{ end }}
{{- if and $last (ne .Role "assistant") }}<|im_start|>assistant
{{ end }}
{{- end }}"""


@dataclass(frozen=True)
class TemplateFamily:
    name: str
    go_template: str
    stop: tuple[str, ...]


FAMILIES = {
    "gemma": TemplateFamily("gemma", GEMMA_TEMPLATE, ("<end_of_turn>",)),
    "phi2": TemplateFamily("phi2", PHI2_TEMPLATE, ("<|endoftext|>", "Instruct:")),
    "chatml": TemplateFamily("chatml", CHATML_TEMPLATE, ("<|im_end|>",)),
}


def template_family(chat_template: str | None) -> TemplateFamily | None:
    """Which Go template renders like this Jinja chat template, or None when none of ours does."""
    if not chat_template:
        return None
    if "<start_of_turn>" in chat_template and "<end_of_turn>" in chat_template:
        return FAMILIES["gemma"]
    if "Instruct: " in chat_template and "Output:" in chat_template:
        return FAMILIES["phi2"]
    if "<|im_start|>" in chat_template and "<|im_end|>" in chat_template:
        return FAMILIES["chatml"]
    return None


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_modelfile(source: str, family: TemplateFamily, system_prompt: str | None, *, note: str = "") -> str:
    """The Modelfile text. `source` is what FROM points at (a .gguf file or a safetensors directory, relative)."""
    lines = [
        "# Ollama Modelfile written by `slm export`.",
        "# Create and run:  ollama create slm-tax -f Modelfile  &&  ollama run slm-tax",
    ]
    if note:
        lines += [f"# {line}" for line in note.splitlines()]
    lines += [f"FROM {source}", "", f'TEMPLATE """{family.go_template}"""', ""]
    lines += [f"PARAMETER stop {_quote(stop)}" for stop in family.stop]
    if system_prompt:
        lines += ["", f'SYSTEM """{system_prompt.replace(chr(34) * 3, chr(34) * 2)}"""']
    return "\n".join(lines) + "\n"


def write_modelfile(
    path: Path, source: str, family: TemplateFamily, system_prompt: str | None, *, note: str = ""
) -> Path:
    with atomic_writer(path) as out:
        out.write(render_modelfile(source, family, system_prompt, note=note))
    return path
