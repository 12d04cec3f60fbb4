"""`slm export`: merged weights equal base + adapter, model card lineage, GGUF handling, the Ollama Modelfile.

Ollama is not installed here, so the Modelfile's Go templates are checked by rendering them with `GoTemplate`, a
small interpreter for the subset of Go's text/template they use (trim markers, range, if / else if, variables,
eq / ne / and / or / not / len / slice), and comparing with what the Jinja chat templates render.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from fine_tuning.export.modelfile import FAMILIES, render_modelfile, template_family
from slm_forest.config import RunConfig
from slm_forest.errors import SlmError
from slm_forest.pipeline import run_stage
from tests.test_evaluate_tiny import SYSTEM_PROMPT, copy_run, tiny_run


def _config(run_dir, **export) -> RunConfig:
    return RunConfig.model_validate({"run_name": run_dir.name, "runs_dir": str(run_dir.parent), "export": export})


# ------------------------------------------------------------------------------------------------ merge & files
@pytest.mark.slow
def test_export_merges_and_packages_the_model(tmp_path, tmp_path_factory, monkeypatch):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from fine_tuning.train.loading import load_trained

    for name in ("LLAMA_CPP_CONVERT", "LLAMA_CPP_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # no llama.cpp converter on PATH
    run = copy_run(tiny_run(tmp_path_factory), tmp_path)
    (run / "evaluate").mkdir()
    (run / "evaluate" / "metrics.json").write_text(
        json.dumps(
            {
                "examples": {"generated": 6},
                "headline": [
                    {"metric": "test loss", "base": 6.6, "tuned": 5.9, "delta": -0.7, "higher_is_better": False}
                ],
            }
        ),
        encoding="utf-8",
    )

    report = run_stage(_config(run), "export")

    merged_dir = run / "export" / "merged"
    files = {p.name for p in merged_dir.iterdir()}
    assert {
        "model.safetensors",
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "README.md",
        "slm_forest.json",
    } <= files
    assert not any(name.startswith("adapter") for name in files)  # a plain model, no PEFT files

    # merged logits == base + adapter logits
    merged = AutoModelForCausalLM.from_pretrained(merged_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(merged_dir)
    peft_model, _ = load_trained(run / "train", device="cpu")
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "종합소득세 확정신고 기한은 언제인가요?"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    ids = torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        expected = peft_model(input_ids=ids).logits
        got = merged(input_ids=ids).logits
        with peft_model.disable_adapter():
            base = peft_model(input_ids=ids).logits
    assert torch.allclose(got, expected, atol=1e-4)
    assert (base - expected).abs().max() > 1e-2  # the adapter matters, so the equality above means something
    assert report.manifest.stats["merge"]["probe_max_abs_logit_diff"] < 1e-4

    # the chat template and stop tokens travel with the model
    assert tokenizer.chat_template and "<end_of_turn>" in tokenizer.chat_template
    eos = merged.generation_config.eos_token_id
    assert tokenizer.convert_tokens_to_ids("<end_of_turn>") in (eos if isinstance(eos, list) else [eos])
    meta = json.loads((merged_dir / "slm_forest.json").read_text(encoding="utf-8"))
    assert meta["system_prompt"] == SYSTEM_PROMPT and meta["stop_tokens"] == ["<end_of_turn>"]

    card = (merged_dir / "README.md").read_text(encoding="utf-8")
    assert card.startswith("---\nlanguage:")
    assert "dataset fingerprint" in card and meta["dataset_fingerprint"] in card
    assert "offline:offline-v1 (12)" in card and "offline@1 (12)" in card  # teachers and prompt versions
    assert "effective dates: 2025-01-01" in card and "decision dates: 2023-05-02" in card  # corpus dates
    assert "learning_rate: 0.01" in card  # training config
    assert "| test loss | 6.6 | 5.9 | -0.7 |" in card  # evaluation metrics

    modelfile = (run / "export" / "Modelfile").read_text(encoding="utf-8")
    assert "FROM ./merged" in modelfile
    assert 'PARAMETER stop "<end_of_turn>"' in modelfile
    assert f'SYSTEM """{SYSTEM_PROMPT}"""' in modelfile
    assert any("GGUF skipped" in note and "llama.cpp" in note for note in report.manifest.stats["notes"])


def test_gguf_without_llama_cpp_or_the_package_index_is_a_one_line_error(tmp_path, tmp_path_factory, monkeypatch):
    """No llama.cpp installed, nothing cached, pip cannot reach an index: one line naming both ways out."""
    for name in ("LLAMA_CPP_CONVERT", "LLAMA_CPP_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATH", f"{tmp_path / 'empty-bin'}:/usr/bin:/bin")
    monkeypatch.setenv("SLM_CACHE_DIR", str(tmp_path / "cache"))
    for name, value in (("PIP_CONFIG_FILE", "/dev/null"), ("PIP_NO_INDEX", "1"), ("PIP_FIND_LINKS", str(tmp_path))):
        monkeypatch.setenv(name, value)
    run = copy_run(tiny_run(tmp_path_factory), tmp_path)
    with pytest.raises(SlmError) as info:
        run_stage(_config(run, gguf=True), "export")
    assert "could not download llama-cpp-python==" in info.value.message
    assert "PyPI" in info.value.hint and "LLAMA_CPP_DIR" in info.value.hint
    assert "\n" not in str(info.value)
    from slm_forest.config import load_config

    config = tmp_path / "bad.yaml"
    config.write_text("export:\n  gguf: q4_k\n", encoding="utf-8")
    with pytest.raises(SlmError, match="gguf: 'q4_k' is not a GGUF type"):
        load_config(config)


FAKE_CONVERTER = """
import json, sys
args = sys.argv[1:]
out = args[args.index("--outfile") + 1]
with open(out, "w") as f:
    json.dump({"model_dir": args[0], "outtype": args[args.index("--outtype") + 1]}, f)
"""


@pytest.mark.slow
def test_gguf_conversion_runs_the_llama_cpp_converter(tmp_path, tmp_path_factory, monkeypatch):
    """llama.cpp is not installed here: a stand-in script with the converter's command line checks the call."""
    script = tmp_path / "convert_hf_to_gguf.py"
    script.write_text(FAKE_CONVERTER, encoding="utf-8")
    monkeypatch.setenv("LLAMA_CPP_CONVERT", str(script))
    run = copy_run(tiny_run(tmp_path_factory, "tiny-random-gemma3"), tmp_path)
    report = run_stage(_config(run, gguf=True), "export")
    gguf = run / "export" / "model-f16.gguf"
    written = json.loads(gguf.read_text(encoding="utf-8"))
    assert written == {"model_dir": str(run / "export" / "merged"), "outtype": "f16"}  # fp32 tiny model -> f16
    assert report.manifest.stats["gguf"][0]["file"] == "model-f16.gguf"
    assert "FROM ./model-f16.gguf" in (run / "export" / "Modelfile").read_text(encoding="utf-8")

    report = run_stage(_config(run, gguf=["f16", "q8_0"]), "export")  # one file per type; Ollama gets the 8-bit one
    assert [g["file"] for g in report.manifest.stats["gguf"]] == ["model-f16.gguf", "model-q8_0.gguf"]
    assert json.loads((run / "export" / "model-q8_0.gguf").read_text(encoding="utf-8"))["outtype"] == "q8_0"
    assert "FROM ./model-q8_0.gguf" in (run / "export" / "Modelfile").read_text(encoding="utf-8")

    script.write_text(
        "import sys; print('boom: unsupported architecture', file=sys.stderr); sys.exit(3)", encoding="utf-8"
    )
    with pytest.raises(SlmError, match="GGUF conversion failed \\(exit 3\\): boom: unsupported architecture"):
        run_stage(_config(run, gguf=True), "export", force=True)


def test_a_phi_llama_cpp_could_not_load_is_refused_before_converting(tmp_path):
    from fine_tuning.export.gguf import check_convertible

    (tmp_path / "config.json").write_text(
        json.dumps({"model_type": "phi", "hidden_size": 64, "intermediate_size": 128}), encoding="utf-8"
    )
    with pytest.raises(SlmError) as info:
        check_convertible(tmp_path)
    assert "not 4 × hidden_size (256)" in info.value.message
    assert "train.tiny_model.intermediate_size: 256" in info.value.hint
    (tmp_path / "config.json").write_text(
        json.dumps({"model_type": "phi", "hidden_size": 64, "intermediate_size": 256}), encoding="utf-8"
    )
    check_convertible(tmp_path)


def test_push_to_hub_needs_hf_token(tmp_path):
    from fine_tuning.export.stage import push_to_hub

    with pytest.raises(SlmError, match="HF_TOKEN"):
        push_to_hub(tmp_path, "someone/slm-tax")


# --------------------------------------------------------------------------------------------------- Modelfile
def test_modelfile_family_and_stop_tokens():
    from fine_tuning.train.chat_templates import GEMMA_TRAINING_TEMPLATE, PHI2_TRAINING_TEMPLATE

    gemma = template_family(GEMMA_TRAINING_TEMPLATE)
    assert gemma is FAMILIES["gemma"] and gemma.stop == ("<end_of_turn>",)
    phi2 = template_family(PHI2_TRAINING_TEMPLATE)
    assert phi2 is FAMILIES["phi2"] and "<|endoftext|>" in phi2.stop
    assert (
        template_family("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}").name
        == "chatml"
    )
    assert template_family("{{ messages }}") is None and template_family(None) is None

    text = render_modelfile("./model.gguf", gemma, 'say "hi"')
    assert text.count('PARAMETER stop "<end_of_turn>"') == 1
    assert "FROM ./model.gguf" in text and 'SYSTEM """say "hi""""' in text
    assert re.search(r'TEMPLATE """.*<start_of_turn>model.*"""', text, re.S)


class GoTemplate:
    """A subset of Go's text/template, enough for Ollama chat templates (see the module docstring)."""

    TOKEN = re.compile(
        r'\s*(\(|\)|"(?:[^"\\]|\\.)*"|:=|=|,|\$[A-Za-z_0-9]*(?:\.[A-Za-z_]+)*|\.[A-Za-z_]+(?:\.[A-Za-z_]+)*|\.|[A-Za-z_][A-Za-z_0-9]*|\d+)'
    )

    def __init__(self, source: str) -> None:
        self.nodes = self._parse(self._lex(source))

    @staticmethod
    def _lex(source: str) -> list[tuple[str, str]]:
        items: list[tuple[str, str]] = []
        pos = 0
        trim_next = False
        while pos < len(source):
            start = source.find("{{", pos)
            text = source[pos:] if start < 0 else source[pos:start]
            if trim_next:
                text = text.lstrip(" \t\r\n")
            if start < 0:
                items.append(("text", text))
                break
            end = source.index("}}", start)
            action = source[start + 2 : end]
            if action.startswith("- "):
                text = text.rstrip(" \t\r\n")
                action = action[2:]
            trim_next = action.endswith(" -")
            if trim_next:
                action = action[:-2]
            items.append(("text", text))
            items.append(("action", action.strip()))
            pos = end + 2
        return [item for item in items if item != ("text", "")]

    def _parse(self, items: list[tuple[str, str]]) -> list[Any]:
        stack: list[list[Any]] = [[]]
        blocks: list[Any] = []
        for kind, value in items:
            if kind == "text":
                stack[-1].append(("text", value))
            elif value.startswith("range "):
                node = {"type": "range", "head": value[6:], "body": []}
                stack[-1].append(node)
                blocks.append(node)
                stack.append(node["body"])
            elif value.startswith("if "):
                node = {"type": "if", "branches": [[value[3:], []]]}
                stack[-1].append(node)
                blocks.append(node)
                stack.append(node["branches"][0][1])
            elif value.startswith("else"):
                stack.pop()
                cond = value[8:] if value.startswith("else if ") else "true"
                blocks[-1]["branches"].append([cond, []])
                stack.append(blocks[-1]["branches"][-1][1])
            elif value == "end":
                stack.pop()
                blocks.pop()
            else:
                stack[-1].append(("action", value))
        assert len(stack) == 1 and not blocks, "unbalanced template"
        return stack[0]

    def render(self, data: dict[str, Any]) -> str:
        out: list[str] = []
        self._run(self.nodes, data, data, [{}], out)
        return "".join(out)

    def _run(self, nodes: list[Any], dot: Any, root: Any, scopes: list[dict[str, Any]], out: list[str]) -> None:
        for node in nodes:
            if isinstance(node, tuple) and node[0] == "text":
                out.append(node[1])
            elif isinstance(node, tuple):
                tokens = self.TOKEN.findall(node[1])
                if len(tokens) > 1 and tokens[1] in (":=", "="):
                    value = self._expr(tokens[2:], dot, root, scopes)
                    if tokens[1] == ":=":
                        scopes[-1][tokens[0]] = value
                    else:
                        next(s for s in reversed(scopes) if tokens[0] in s)[tokens[0]] = value
                else:
                    value = self._expr(tokens, dot, root, scopes)
                    out.append(str(value).lower() if isinstance(value, bool) else str(value))
            elif node["type"] == "range":
                tokens = self.TOKEN.findall(node["head"])
                names: list[str] = []
                if ":=" in tokens:
                    names = [t for t in tokens[: tokens.index(":=")] if t != ","]
                    tokens = tokens[tokens.index(":=") + 1 :]
                for index, item in enumerate(self._expr(tokens, dot, root, scopes)):
                    scope = dict(zip(names, [index, item])) if len(names) == 2 else dict(zip(names, [item]))
                    self._run(node["body"], item, root, [*scopes, scope], out)
            else:
                for cond, body in node["branches"]:
                    if self._truth(self._expr(self.TOKEN.findall(cond), dot, root, scopes)):
                        self._run(body, dot, root, [*scopes, {}], out)
                        break

    @staticmethod
    def _truth(value: Any) -> bool:
        return bool(value)

    def _expr(self, tokens: list[str], dot: Any, root: Any, scopes: list[dict[str, Any]]) -> Any:
        args, rest = self._terms(tokens, dot, root, scopes)
        assert not rest, rest
        return args[0] if len(args) == 1 and not callable(args[0]) else self._call(args)

    def _terms(
        self, tokens: list[str], dot: Any, root: Any, scopes: list[dict[str, Any]]
    ) -> tuple[list[Any], list[str]]:
        values: list[Any] = []
        while tokens and tokens[0] != ")":
            token, tokens = tokens[0], tokens[1:]
            if token == "(":
                inner, tokens = self._terms(tokens, dot, root, scopes)
                assert tokens[0] == ")"
                tokens = tokens[1:]
                values.append(inner[0] if len(inner) == 1 and not callable(inner[0]) else self._call(inner))
            elif token.startswith('"'):
                values.append(json.loads(token))
            elif token.startswith("$"):
                name, _, fields = token.partition(".")
                value = root if name == "$" else next(s[name] for s in reversed(scopes) if name in s)
                for field in filter(None, fields.split(".")):
                    value = value[field]
                values.append(value)
            elif token == ".":
                values.append(dot)
            elif token.startswith("."):
                value = dot
                for field in token[1:].split("."):
                    value = value[field]
                values.append(value)
            elif token in ("true", "false"):
                values.append(token == "true")
            elif token.isdigit():
                values.append(int(token))
            else:
                values.append(self.FUNCTIONS[token])
        return values, tokens

    FUNCTIONS = {
        "eq": lambda a, b: a == b,
        "ne": lambda a, b: a != b,
        "not": lambda a: not a,
        "len": len,
        "slice": lambda x, i: x[i:],
        "and": lambda *xs: next((x for x in xs if not x), xs[-1]),
        "or": lambda *xs: next((x for x in xs if x), xs[-1]),
    }

    @staticmethod
    def _call(values: list[Any]) -> Any:
        function, *args = values
        return function(*args)


CONVERSATIONS = [
    [{"role": "user", "content": "부가가치세 신고는 언제 하나요?"}],
    [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "경정청구 기한은?"}],
    [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": "수정신고는 언제 하나요?"},
        {"role": "assistant", "content": "결정 통지 전까지 할 수 있습니다."},
        {"role": "user", "content": "근거 조문은요?"},
    ],
    [
        {"role": "user", "content": "첫 질문"},
        {"role": "assistant", "content": "첫 답"},
        {"role": "user", "content": "둘째 질문"},
    ],
]


@pytest.mark.parametrize("family", ["gemma", "phi2", "chatml"])
def test_go_templates_render_like_the_jinja_chat_templates(family):
    from transformers.utils.chat_template_utils import render_jinja_template

    from fine_tuning.train.chat_templates import GEMMA_TRAINING_TEMPLATE, PHI2_TRAINING_TEMPLATE

    chatml = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    jinja = {"gemma": GEMMA_TRAINING_TEMPLATE, "phi2": PHI2_TRAINING_TEMPLATE, "chatml": chatml}[family]
    go = GoTemplate(FAMILIES[family].go_template)
    for messages in CONVERSATIONS:
        (expected,), _ = render_jinja_template(
            conversations=[messages],
            chat_template=jinja,
            add_generation_prompt=True,
            bos_token="",
            eos_token="<|endoftext|>",
        )
        ollama_messages = [{"Role": m["role"], "Content": m["content"]} for m in messages]
        assert go.render({"Messages": ollama_messages}) == expected, messages


def test_go_template_interpreter_follows_go_trim_rules():
    assert GoTemplate("a  {{- 1 -}}  b").render({}) == "a1b"
    assert GoTemplate('{{ $x := "p" }}{{ range .L }}{{ $x = . }}{{ end }}{{ $x }}').render({"L": ["q", "r"]}) == "r"
    assert (
        GoTemplate('{{ if and 1 (eq .A "z") }}yes{{ else if .B }}b{{ else }}no{{ end }}').render({"A": "y", "B": 0})
        == "no"
    )


def test_modelfile_export_needs_merge(tmp_path, tmp_path_factory):
    run = copy_run(tiny_run(tmp_path_factory), tmp_path)
    with pytest.raises(SlmError, match="export.merge is false"):
        run_stage(_config(run, merge=False), "export")
    assert run_stage(_config(run, merge=False, ollama_modelfile=False), "export").counts == {}


@pytest.mark.slow
def test_multimodal_gemma3_merges_and_reloads_as_the_class_it_was_trained_as(tmp_path, tmp_path_factory):
    """Gemma 3 4B/12B layout (vision tower + language model): the merge keeps the class and the vision weights."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    from fine_tuning.train.loading import load_trained

    run = copy_run(tiny_run(tmp_path_factory, "tiny-random-gemma3-mm"), tmp_path)
    run_stage(_config(run), "export")
    merged = AutoModelForCausalLM.from_pretrained(run / "export" / "merged").eval()
    assert type(merged).__name__ == "Gemma3ForConditionalGeneration"
    peft_model, tokenizer = load_trained(run / "train", device="cpu")
    ids = torch.tensor(
        [tokenizer("<bos><start_of_turn>user\n부가가치세 신고<end_of_turn>\n", add_special_tokens=False)["input_ids"]]
    )
    with torch.no_grad():
        assert torch.allclose(merged(input_ids=ids).logits, peft_model(input_ids=ids).logits, atol=1e-4)
    merged_weights = load_file(run / "export" / "merged" / "model.safetensors")
    base_weights = load_file(run / "train" / "base_model" / "model.safetensors")
    vision = [k for k in base_weights if "vision_tower" in k]
    assert vision and all(torch.equal(merged_weights[k], base_weights[k]) for k in vision)
    assert 'PARAMETER stop "<end_of_turn>"' in (run / "export" / "Modelfile").read_text(encoding="utf-8")


@pytest.mark.slow
def test_qlora_multimodal_gemma3_trains_in_4bit_and_exports_a_full_precision_merge(tmp_path, monkeypatch):
    """`train.method=qlora` through the real stages: Linear4bit layers while training (language model only), then
    export merges the adapter into the full-precision base (never into 4-bit weights) and the merged logits equal
    base + adapter."""
    import bitsandbytes as bnb
    import torch
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM

    import fine_tuning.train.stage as train
    from fine_tuning.train.loading import load_trained
    from tests.test_train_stage import config, write_build

    seen: dict[str, Any] = {}
    build_trainer = train.make_trainer

    def recording_trainer(model, *args, **kwargs):
        modules = dict(model.named_modules())
        seen["four_bit"] = [n for n, m in modules.items() if isinstance(m, bnb.nn.Linear4bit)]
        seen["vision_linears"] = [
            n for n, m in modules.items() if "vision_tower" in n and isinstance(m, torch.nn.Linear)
        ]
        return build_trainer(model, *args, **kwargs)

    monkeypatch.setattr(train, "make_trainer", recording_trainer)
    runs = tmp_path / "runs"
    write_build(runs, "qlora", n_train=16, n_val=4)
    cfg = config(
        runs,
        "qlora",
        "train.base_model=tiny-random-gemma3-mm",
        "train.method=qlora",
        "train.max_steps=3",
        "train.eval_steps=3",
        "train.save_steps=3",
        "train.report_to=[]",
        "train.learning_rate=0.01",
        "train.lora.dropout=0",
    )
    run_stage(cfg, "train")
    # text data: the language model alone is loaded, its decoder linears in 4-bit, no vision tower at all
    assert seen["four_bit"] and all(".model.layers." in n for n in seen["four_bit"])
    assert seen["vision_linears"] == []
    stage = runs / "qlora" / "train"
    summary = json.loads((stage / "train_summary.json").read_text(encoding="utf-8"))
    assert summary["method"] == "qlora" and summary["model_class"] == "Gemma3ForCausalLM"
    assert "float32" not in summary["frozen_dtypes"] or summary["dtype"] == "fp32"  # fp32 on CPU: the load dtype

    report = run_stage(cfg, "export")
    merged_dir = runs / "qlora" / "export" / "merged"
    assert report.manifest.stats["merge"]["dtype"] == "float32"
    with safe_open(str(merged_dir / "model.safetensors"), "pt") as weights:
        keys = list(weights.keys())
        dtypes = {weights.get_slice(k).get_dtype() for k in keys}
    assert dtypes == {"F32"}  # no packed uint8 4-bit weights
    assert not any(s in k for k in keys for s in ("absmax", "quant_map", "quant_state", "lora_"))
    config_json = json.loads((merged_dir / "config.json").read_text(encoding="utf-8"))
    assert "quantization_config" not in config_json
    merged = AutoModelForCausalLM.from_pretrained(merged_dir).eval()
    assert type(merged).__name__ == "Gemma3ForCausalLM"  # export.keep_vision is false by default
    assert not any(isinstance(m, bnb.nn.Linear4bit) for m in merged.modules())
    peft_model, tokenizer = load_trained(stage, device="cpu")  # base in full precision + the QLoRA adapter
    assert not any(isinstance(m, bnb.nn.Linear4bit) for m in peft_model.modules())
    ids = torch.tensor(
        [tokenizer("<bos><start_of_turn>user\n부가가치세 신고<end_of_turn>\n", add_special_tokens=False)["input_ids"]]
    )
    with torch.no_grad():
        expected = peft_model(input_ids=ids).logits
        with peft_model.disable_adapter():
            base = peft_model(input_ids=ids).logits
        got = merged(input_ids=ids).logits
    assert torch.allclose(got, expected, atol=1e-4)
    assert (base - expected).abs().max() > 1e-4  # the adapter changed something, so the equality means something

    # export.keep_vision: the same trained language model inside the multimodal checkpoint, vision tower restored
    vision_cfg = cfg.model_copy(deep=True)
    vision_cfg.export.keep_vision = True
    report = run_stage(vision_cfg, "export")
    assert report.manifest.stats["merge"]["keep_vision"]["vision_tower"] == "restored from the base"
    with_vision = AutoModelForCausalLM.from_pretrained(merged_dir).eval()
    assert type(with_vision).__name__ == "Gemma3ForConditionalGeneration"
    with torch.no_grad():
        assert torch.allclose(with_vision(input_ids=ids).logits, expected, atol=1e-4)


# ------------------------------------------------------------------------------------------ which adapter (RL)
def _merged_logits(merged_dir, question: str = "종합소득세 확정신고 기한은 언제인가요?"):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(merged_dir)
    ids = torch.tensor([tokenizer(question, add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        return AutoModelForCausalLM.from_pretrained(merged_dir).eval()(input_ids=ids).logits


@pytest.mark.slow
def test_export_merges_the_rl_adapter_when_there_is_one(tmp_path, tmp_path_factory, monkeypatch):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from slm_forest.manifest import read_manifest, write_manifest
    from tests.test_reinforce_heldout import fake_rl_stage

    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    run = copy_run(tiny_run(tmp_path_factory), tmp_path)
    cfg = _config(run, adapter="rl", ollama_modelfile=False)
    with pytest.raises(SlmError, match="export.adapter is rl but the reinforce stage has not finished") as error:
        run_stage(cfg, "export")
    assert "slm reinforce" in error.value.hint and not (run / "export" / "merged").exists()

    fake_rl_stage(run, cfg, scale=0.0)  # "RL" adapter = the SFT adapter with lora_B zeroed: the base model itself
    report = run_stage(_config(run, ollama_modelfile=False), "export")  # adapter: auto
    assert report.manifest.stats["merge"]["adapter"]["which"] == "rl"
    base_dir = run / "train" / "base_model"
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    ids = torch.tensor([tokenizer("종합소득세 확정신고 기한은 언제인가요?", add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        base = AutoModelForCausalLM.from_pretrained(base_dir).eval()(input_ids=ids).logits
    assert torch.allclose(_merged_logits(run / "export" / "merged"), base, atol=1e-5)
    card = (run / "export" / "merged" / "README.md").read_text(encoding="utf-8")
    assert "reinforced with GRPO" in card and "## Reinforcement (GRPO)" in card and "0.31 at the first" in card

    sft = run_stage(_config(run, adapter="sft", ollama_modelfile=False), "export")
    assert sft.manifest.stats["merge"]["adapter"]["which"] == "sft"
    assert (_merged_logits(run / "export" / "merged") - base).abs().max() > 1e-2  # the SFT adapter moves logits
    assert "## Adapter" in (run / "export" / "merged" / "README.md").read_text(encoding="utf-8")

    # an RL adapter trained from an older SFT adapter is not merged: auto says so and takes SFT, rl refuses
    manifest = read_manifest(run / "reinforce")
    for entry in manifest.inputs:
        entry.sha256 = "0" * 64 if entry.path.startswith("train/adapter/") else entry.sha256
    write_manifest(run / "reinforce", manifest)
    stale = run_stage(_config(run, ollama_modelfile=False), "export", force=True)
    assert stale.manifest.stats["merge"]["adapter"]["which"] == "sft"
    assert any("older train stage" in note for note in stale.manifest.stats["notes"])
    with pytest.raises(SlmError, match="older train stage"):
        run_stage(cfg, "export", force=True)
