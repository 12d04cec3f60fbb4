"""One YAML file per run, validated by pydantic.

Unknown keys are errors that name the dotted key (and the YAML line); `--set a.b=value` overrides any key; secrets
never live here: teachers and clients name the *environment variable* that holds a key (`api_key_env`).

Each stage owns one section (`collect`, `prepare`, `index`, `distill`, `build`, `train`, `evaluate`, `export`); a
stage's fingerprint hashes its own section plus the upstream stages' outputs, so changing `train.lora.r` reruns
training but not distillation.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from slm_forest.config_models import (  # re-exported: callers import every section from slm_forest.config
    ExportConfig,
    LoraConfigSection,
    PlanConfig,
    ReinforceConfig,
    RewardWeightsSection,
    Section,
    TrainConfig,
)
from slm_forest.config_source import apply_overrides, format_validation_error, parse_override, read_yaml_config
from slm_forest.redact import register_secret_envs

__all__ = [
    "ExportConfig",
    "LoraConfigSection",
    "PlanConfig",
    "ReinforceConfig",
    "RewardWeightsSection",
    "RunConfig",
    "Section",
    "TrainConfig",
    "apply_overrides",
    "config_to_yaml",
    "load_config",
    "parse_override",
]


# --------------------------------------------------------------------------------------------------------- collect
class BundledSource(Section):
    """The demo corpus shipped inside the package (real statute articles and 국세청 interpretations)."""

    kind: Literal["bundled"] = "bundled"
    include: list[Literal["statutes", "rulings"]] = Field(
        default_factory=lambda: ["statutes", "rulings"], description="which parts of the bundled corpus to read"
    )


class DumpSource(Section):
    """Files people already have: law.go.kr responses (JSON/XML), precedent files, casebooks, the seed layouts."""

    kind: Literal["dump"] = "dump"
    path: str = Field(description="a file or a directory (read recursively)")
    format: Literal[
        "auto",
        "lawgo_law",
        "lawgo_prec",
        "lawgo_expc",
        "seed_judgment",
        "precedent_md",
        "nts_casebook",
        "statute_units",
    ] = Field("auto", description="auto detects the shape from each file's content")
    encoding: str = Field("auto", description="auto detects UTF-8 (with/without BOM) and CP949/EUC-KR")
    glob: str = Field("**/*", description="which files under `path` to read")


class LawgoSource(Section):
    """The 국가법령정보 공동활용 Open API. OC comes from the environment variable named by `oc_env`."""

    kind: Literal["lawgo"] = "lawgo"
    target: Literal["law", "eflaw", "prec", "expc"] = "eflaw"
    laws: list[str] | Literal["tax-all"] = Field(default_factory=list, description="law names, or tax-all")
    law_ids: list[str] = Field(default_factory=list, description="법령ID values")
    msts: list[str] = Field(default_factory=list, description="법령일련번호: pins a version")
    ef_yd: str | None = Field(None, description="시행일자 YYYYMMDD for eflaw")
    query: str | None = Field(None, description="search query for prec/expc")
    court: str | None = Field(None, description="법원명 for prec")
    date_from: str | None = None
    date_to: str | None = None
    case_no: str | None = None
    ids: list[str] = Field(default_factory=list, description="detail fetch by ID (prec/expc)")
    max_pages: int = Field(20, ge=1, description="paging cap per query (display=100 per page)")
    response_type: Literal["JSON", "XML"] = "JSON"
    base_url: str = "https://www.law.go.kr/DRF"
    oc_env: str = Field("LAWGO_OC", description="environment variable holding the OC (never put the OC here)")
    requests_per_second: float = Field(5.0, gt=0)
    timeout_s: float = Field(30.0, gt=0)
    max_retries: int = Field(5, ge=0, description="retries on 429/5xx/timeouts/empty or HTML pages")
    backoff_s: float = Field(1.0, gt=0, description="first retry wait; doubles per retry (with jitter), max 60 s")
    max_retry_after_s: float = Field(120.0, gt=0, description="longest Retry-After honoured before giving up")


class LegalizeSource(Section):
    """A checkout of legalize-kr/legalize-kr (kr/<법령명>/법률.md, 시행령.md, 시행규칙.md); no API key needed."""

    kind: Literal["legalize"] = "legalize"
    path: str = Field(description="the clone (its root, or its kr/ folder); a plain copy works too, without history")
    laws: list[str] | Literal["tax-all"] = Field(
        "tax-all", description="tax-all (the tax laws and their 시행령), or law names as law.go.kr lists them"
    )
    as_of: date | None = Field(
        None, description="YYYY-MM-DD: read the version in force on that day from git history; default today"
    )


SourceConfig = Annotated[BundledSource | DumpSource | LawgoSource | LegalizeSource, Field(discriminator="kind")]


class CollectConfig(Section):
    sources: list[SourceConfig] = Field(default_factory=lambda: [BundledSource()])
    on_error: Literal["skip", "fail"] = Field("skip", description="a malformed input file: skip it (counted) or stop")
    cache_dir: str | None = Field(None, description="raw-response cache for lawgo; default <run>/collect/cache")


# --------------------------------------------------------------------------------------------------------- prepare
class DedupConfig(Section):
    exact: bool = True
    near: bool = Field(True, description="MinHash/LSH over Hangul character n-grams")
    threshold: float = Field(0.9, gt=0, le=1, description="Jaccard similarity above which two texts are duplicates")
    ngram: int = Field(5, ge=2)
    num_perm: int = Field(128, ge=16)


class SampleConfig(Section):
    n: int | None = Field(None, ge=1, description="keep N chunks (the seed project used 1,000); null keeps all")
    keep_source_ratio: bool = True


class PrepareConfig(Section):
    max_chunk_chars: int = Field(1500, ge=100, description="budget per chunk in characters (unless max_chunk_tokens)")
    max_chunk_tokens: int | None = Field(
        None, ge=1, description="budget per chunk in tokens; overrides max_chunk_chars (= tokens × chars_per_token)"
    )
    chars_per_token: float = Field(
        1.5,
        gt=0,
        description="an estimate: Korean text runs ~1.5 characters per token on common LLM tokenizers (it varies by "
        "tokenizer; measure yours); converts max_chunk_tokens to characters and gives each chunk's n_tokens_est",
    )
    min_chunk_chars: int = Field(20, ge=1)
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    sample: SampleConfig = Field(default_factory=SampleConfig)
    scrub_pii: bool = Field(True, description="mask 주민등록번호, phone and account numbers in decisions/rulings")
    include_deleted: bool = Field(False, description="keep 삭제 articles")
    workers: int = Field(
        0, ge=0, description="processes for clean/hash/chunk; 0: one per CPU core for inputs over 32 MB, else 1"
    )

    @property
    def chunk_budget_chars(self) -> int:
        """The character budget the chunker uses: max_chunk_tokens × chars_per_token when set, else max_chunk_chars."""
        if self.max_chunk_tokens is None:
            return self.max_chunk_chars
        return int(self.max_chunk_tokens * self.chars_per_token)

    @model_validator(mode="after")
    def _token_budget(self) -> PrepareConfig:
        if self.chunk_budget_chars < 100:
            raise ValueError(
                f"max_chunk_tokens × chars_per_token is {self.chunk_budget_chars} characters; a chunk needs at least 100"
            )
        return self


# ----------------------------------------------------------------------------------------------------------- index
# Kiwi (Sejong) tags of morphemes that can carry meaning in a search; particles (J*), endings (E*) and punctuation
# (S* but SL/SH/SN/SW) are left out on purpose. "VV-R" (an irregular verb) counts as "VV".
KIWI_TERM_TAGS = frozenset("NNG NNP NNB NP NR VV VA VX MM MAG MAJ XPN XSN XSV XSA XR SL SH SN SW".split())


class IndexConfig(Section):
    """`slm index`: BM25 over Korean morphemes plus exact look-up of cited articles, over prepare's chunks."""

    enabled: bool = Field(True, description="build the retrieval index; false: the stage writes nothing")
    k: int = Field(5, ge=1, le=100, description="hits a search returns when the caller does not say")
    kinds: list[Literal["statute_article", "precedent", "interpretation", "ruling"]] = Field(
        default_factory=lambda: ["statute_article", "precedent", "interpretation", "ruling"],
        min_length=1,
        description="which chunk kinds are searchable",
    )
    tags: list[str] = Field(
        default_factory=lambda: ["NNG", "NNP", "NR", "SN", "SL", "SH", "XR", "VV", "VA", "MAG"],
        min_length=1,
        description="morphemes kept as search terms: nouns, numbers, roots, verb and adjective stems; particles (J*), "
        "endings (E*) and punctuation are dropped, so '증여재산공제는' matches '증여재산공제'",
    )
    k1: float = Field(1.5, ge=0, description="BM25 term-frequency saturation")
    b: float = Field(0.75, ge=0, le=1, description="BM25 length normalisation (0: none, 1: full)")

    @field_validator("tags")
    @classmethod
    def _term_tags(cls, tags: list[str]) -> list[str]:
        unknown = [tag for tag in tags if tag not in KIWI_TERM_TAGS]
        if unknown:
            raise ValueError(f"{', '.join(unknown)}: not a content tag; choose from {' '.join(sorted(KIWI_TERM_TAGS))}")
        return tags


# --------------------------------------------------------------------------------------------------------- distill
class TeacherConfig(Section):
    provider: Literal["offline", "openai", "anthropic", "openai_compatible"] = "offline"
    model: str = "offline-v1"
    base_url: str | None = Field(None, description="for openai_compatible (vLLM, Groq, Ollama …) or a proxy")
    api_key_env: str | None = Field(None, description="environment variable with the key; default per provider")
    max_concurrency: int = Field(16, ge=1)
    requests_per_minute: int | None = Field(None, ge=1)
    tokens_per_minute: int | None = Field(None, ge=1)
    input_tokens_per_minute: int | None = Field(None, ge=1)
    output_tokens_per_minute: int | None = Field(None, ge=1)
    timeout_s: float = Field(120.0, gt=0)
    max_retries: int = Field(6, ge=0)
    temperature: float = Field(0.3, ge=0, le=2)
    max_tokens: int = Field(1500, ge=16)
    response_format: Literal["auto", "json_schema", "json_object", "tool", "none"] = Field(
        "auto", description="auto: json_schema (openai), tool (anthropic), json_object (openai_compatible)"
    )


class ImportConfig(Section):
    """A file of pairs someone already has; its pairs join the teacher pairs and go through every build rule."""

    path: str = Field(description="the file, relative to the working directory (its sha256 is in the fingerprint)")
    format: Literal["auto", "seed", "alpaca", "messages", "csv"] = Field(
        "auto",
        description="seed: JSON list of {question, answer, type, source}; alpaca: {instruction, input, output}; "
        "messages: chat JSONL; csv: question/answer columns; auto: from the extension and the first record's keys",
    )


class OfflineTeacherSettings(Section):
    """Knobs of the offline teacher (provider: offline); the other providers ignore them."""

    # The demo plants deliberately wrong calculation pairs (marked in meta.planted_error) so the build card shows the
    # gate rejecting them by rule name; a real dataset keeps this at 0.
    planted_error_rate: float = Field(
        0.0, ge=0, le=1, description="share of offline calculation pairs given one deliberate error (demo only)"
    )


class DistillConfig(Section):
    teachers: list[TeacherConfig] = Field(default_factory=lambda: [TeacherConfig()])
    audiences: list[Literal["expert", "layperson"]] = Field(default_factory=lambda: ["expert", "layperson"])
    styles: list[Literal["explain", "calculation"]] = Field(default_factory=lambda: ["explain"])
    offline: OfflineTeacherSettings = Field(default_factory=OfflineTeacherSettings)
    mode: Literal["online", "batch"] = "online"
    # One request asks for this many (audience, style) pairs of a chunk in one structured reply; null = all of them.
    # 1 = one request per pair (the layout before issue 16; an existing ledger still answers it). Changing it
    # re-asks only pairs no earlier request answered. A teacher's max_tokens is per pair.
    pairs_per_request: int | None = Field(
        None, ge=1, description="pairs asked for in one request (null: all audience x style pairs of a chunk)"
    )
    max_cost_usd: float | None = Field(
        None,
        gt=0,
        description="hard stop on the dataset's total teacher spend (what the ledger already paid counts; cached "
        "requests are free); in-flight requests may exceed it slightly. Raise it and rerun to continue",
    )
    prices: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="per model: {input_per_mtok, output_per_mtok, cached_input_per_mtok, cache_write_per_mtok}; "
        "overrides shipped prices (a missing cached/write price is charged as input)",
    )
    failure_threshold: float = Field(0.5, ge=0, le=1, description="fail the stage if this share of requests failed")
    batch_poll_s: float = Field(30.0, gt=0, description="batch mode: seconds between status polls")
    batch_max_requests: int = Field(5000, ge=1, description="batch mode: requests per submitted batch")
    imports: list[ImportConfig] = Field(
        default_factory=list, description="pair files to add to the teacher pairs: [{path: …, format: auto}]"
    )
    stall_timeout_s: float = Field(
        600.0,
        gt=0,
        description="online mode: stop with an error when no request has finished for this long (a hung endpoint); "
        "must exceed the teachers' timeout_s",
    )
    stop_grace_s: float = Field(
        30.0, ge=0, description="on Ctrl-C / SIGTERM: seconds the requests in flight get to come back and be recorded"
    )
    # RAFT-style pairs (slm_datagen/distill/context.py): the question shown with retrieved law, the answer citing it.
    context: Literal["none", "gold", "gold+distractors"] = Field(
        "none",
        description="retrieved law in the pair's user message: none, the source article alone (gold), or the source "
        "article among BM25 neighbours (gold+distractors); the answer cites the source",
    )
    context_share: float = Field(
        0.5,
        gt=0,
        le=1,
        description="share of pairs (seeded) given a context when distill.context is not none; the rest stay plain "
        "questions, so the model also answers without retrieval",
    )
    context_distractors: int = Field(
        2,
        ge=1,
        le=8,
        description="gold+distractors: articles beside the source (from the run's index, else the same law)",
    )
    context_max_chars: int = Field(
        600,
        ge=100,
        description="characters of each context article shown (longer ones are cut with ' …'); 600 is what "
        "`--retrieve` shows, a tiny model's short max_length may need less",
    )


# ----------------------------------------------------------------------------------------------------------- build
class BuildConfig(Section):
    val_share: float = Field(0.1, ge=0, lt=1, description="validation share (by source document), 10% as in the seed")
    test_share: float = Field(0.1, ge=0, lt=1)
    formats: list[Literal["chat", "alpaca", "seed_text", "openai", "hf"]] = Field(
        default_factory=lambda: ["chat", "hf"]
    )
    system_prompt: str = "당신은 한국 세법 전문가입니다. 관련 법령을 근거로 정확하게 답변하세요."
    min_answer_chars: int = Field(20, ge=1)
    max_answer_chars: int = Field(4000, ge=1)
    min_hangul_share: float = Field(0.3, ge=0, le=1)
    unresolved_citations: Literal["reject", "flag"] = "reject"
    unverified_calculations: Literal["review", "keep", "reject"] = Field(
        "review", description="calculation answers the calculator cannot check: review.jsonl, keep (flagged) or reject"
    )
    contamination_files: list[str] = Field(
        default_factory=list, description="benchmark CSVs whose questions must not leak"
    )
    contamination_ngram: int = Field(13, ge=3)
    contamination_action: Literal["drop", "flag"] = "drop"
    contamination_min_share: float = Field(
        0.3, gt=0, le=1, description="share of a benchmark question's n-grams found in a pair that counts as overlap"
    )
    near_duplicate_threshold: float = Field(
        0.85, gt=0, le=1, description="character 3-gram Jaccard of two questions above which the later one is dropped"
    )
    judge: TeacherConfig | None = Field(
        None, description="LLM judge scoring faithfulness to the source chunk (1-5); null (default) = no judge"
    )
    judge_min_score: int = Field(3, ge=1, le=5, description="pairs the judge scores below this are rejected")
    second_teacher: TeacherConfig | None = Field(
        None, description="answers each question again; disagreements on amounts/articles go to review.jsonl"
    )
    max_cost_usd: float | None = Field(
        None,
        gt=0,
        description="hard stop on the judge + second teacher spend recorded in build/judge_ledger.jsonl (all runs; "
        "answers already in the ledger are free); priced by distill.prices. Reached: build stops, writes nothing, "
        "raise it and rerun",
    )
    card_license: str = Field("other", description="license id for the dataset card (Hugging Face identifiers)")
    push_to_hub: str | None = Field(None, description="repo id; token from HF_TOKEN")

    @model_validator(mode="after")
    def _shares(self) -> BuildConfig:
        if self.val_share + self.test_share >= 1:
            raise ValueError("val_share + test_share must be below 1")
        return self


# -------------------------------------------------------------------------------------------------------- evaluate
class EvaluateConfig(Section):
    max_examples: int | None = Field(50, ge=1, description="test examples to generate answers for; null for all")
    max_new_tokens: int = Field(128, ge=1)
    temperature: float = Field(0.0, ge=0)
    batch_size: int = Field(8, ge=1)
    benchmarks: list[str] = Field(
        default_factory=list,
        description="KMMLU-format CSV files to score (2-10 options A..J; several files: the subject and its neighbours)",
    )
    few_shot: int = Field(0, ge=0, description="solved examples in the cloze (option log-likelihood) prompt")
    harness: bool | Literal["auto"] = Field(
        "auto",
        description="KMMLU letter protocol through lm-evaluation-harness (pip install 'slm-forest[harness]'); "
        "auto: when it is installed",
    )
    harness_few_shot: int = Field(5, ge=0, description="shots for the harness protocol (KMMLU: 5, from the dev file)")
    bootstrap_resamples: int = Field(
        1000, ge=0, description="paired-bootstrap resamples for every base-vs-tuned interval (seeded by `seed`)"
    )
    judge: TeacherConfig | None = Field(
        None, description="LLM judge scoring correctness, legal basis and clarity (1-5) with reasons; null = none"
    )
    max_cost_usd: float | None = Field(
        None,
        gt=0,
        description="hard stop on the judge's spend recorded in evaluate/judge_ledger.jsonl (all runs; answers "
        "already in the ledger are free); priced by distill.prices. Reached: evaluate stops, raise it and rerun",
    )
    calc_questions: int | None = Field(
        None,
        ge=0,
        description="held-out calculation questions (the reinforce prompts' test split) answered by base, SFT and RL "
        "and scored to the 원 by the calculator; null = 50 when reinforce is enabled or has run, else none; 0 = skip",
    )
    retrieve: Literal["auto", False] | int = Field(
        "auto",
        description="answers also with the top-k articles of the run's index in the prompt (every answer metric "
        "with and without retrieval) and retrieval recall@1/5/10 + MRR of the source article: auto = when the run "
        "has a finished index (k = index.k), a number k = always (no index is an error), false = off",
    )
    as_of: str | None = Field(
        None, description="retrieval: the law in force on this date (YYYY-MM-DD); null = the day evaluate runs"
    )

    @field_validator("retrieve", mode="before")
    @classmethod
    def _retrieve_k(cls, value: object) -> object:
        if value is True or (isinstance(value, int) and not isinstance(value, bool) and not 1 <= value <= 20):
            raise ValueError("auto, false, or the number of articles k from 1 to 20 (e.g. 5)")
        return value

    @field_validator("as_of")
    @classmethod
    def _as_of_date(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                date.fromisoformat(value)
            except ValueError:
                raise ValueError(f"{value!r} is not a YYYY-MM-DD date, e.g. 2025-01-01") from None
        return value


class RunConfig(Section):
    run_name: str = Field("default", pattern=r"^[A-Za-z0-9._-]+$")
    runs_dir: str = "runs"
    seed: int = 42
    collect: CollectConfig = Field(default_factory=CollectConfig)
    prepare: PrepareConfig = Field(default_factory=PrepareConfig)
    index: IndexConfig = Field(default_factory=IndexConfig)
    distill: DistillConfig = Field(default_factory=DistillConfig)
    build: BuildConfig = Field(default_factory=BuildConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    reinforce: ReinforceConfig = Field(default_factory=ReinforceConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)
    plan: PlanConfig = Field(default_factory=PlanConfig)

    # Where the config came from; not part of any fingerprint.
    source_path: str | None = Field(None, exclude=True)

    def run_dir(self) -> Path:
        # Relative to the working directory, like every other path the CLI takes.
        return Path(self.runs_dir) / self.run_name

    def section_fingerprint(self, section: str) -> str:
        data = getattr(self, section).model_dump(mode="json")
        return hashlib.sha256(
            json.dumps({"seed": self.seed, section: data}, sort_keys=True, ensure_ascii=False).encode()
        ).hexdigest()


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> RunConfig:
    """Read, override and validate a run config. Every failure is an SlmError naming the file:line, key or --set."""
    overrides = list(overrides or [])
    source = read_yaml_config(Path(path)) if path is not None else None
    data = apply_overrides(source.data if source else {}, overrides)
    try:
        cfg = RunConfig.model_validate(data)
    except ValidationError as exc:
        raise format_validation_error(exc, RunConfig, source, overrides) from None
    cfg.source_path = str(path) if path is not None else None
    register_secret_envs(secret_env_names(cfg))
    return cfg


def secret_env_names(cfg: RunConfig) -> list[str]:
    """The environment variables this config reads secrets from: every teacher's and judge's api_key_env and every
    law.go.kr source's oc_env (the providers' default variables are always treated as secrets)."""
    teachers = [*cfg.distill.teachers, cfg.build.judge, cfg.build.second_teacher, cfg.evaluate.judge]
    names = [t.api_key_env for t in teachers if t is not None and t.api_key_env]
    return names + [s.oc_env for s in cfg.collect.sources if isinstance(s, LawgoSource)]


def config_to_yaml(cfg: RunConfig) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), allow_unicode=True, sort_keys=False)
