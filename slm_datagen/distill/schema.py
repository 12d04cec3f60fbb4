"""The pair a teacher must return: one JSON object per request, the same for every provider.

`PAIR_JSON_SCHEMA` is the JSON Schema sent to the providers (OpenAI `response_format` json_schema with strict mode,
Anthropic's forced tool `input_schema`, and written into the prompt for `openai_compatible` servers). Strict mode
needs every property required and no free-form maps, so calculation inputs travel as a list of {name, value} and
become `Calculation.inputs` (a dict) when the pair is turned into a `QAPair`. A value is a number, a string or a
boolean (the checker needs e.g. `relationship: "lineal_ascendant"` and `donee_is_minor: false`); the union is an
`anyOf` of single types, the form OpenAI's strict mode documents (it lists anyOf among the supported keywords).
The input names and values the checker accepts are in `calcspec.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from slm_datagen.distill.calcspec import RESULT_FIELDS, normalise_inputs
from slm_forest.records import Calculation

CalculationKind = Literal["gift_tax", "inheritance_tax", "income_tax", "capital_gains_tax"]


class _Draft(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CitationDraft(_Draft):
    law: str = Field(min_length=1)  # 법령명: 소득세법
    article: str = Field(min_length=1)  # 조/항: 제12조 제3호

    def label(self) -> str:
        return f"{self.law.strip()} {self.article.strip()}".strip()


class CalcInput(_Draft):
    name: str = Field(min_length=1)
    value: bool | int | float | str  # bool first: JSON true must stay a bool, not become 1


class CalculationDraft(_Draft):
    kind: CalculationKind
    year: int = Field(ge=1990, le=2100)
    inputs: list[CalcInput]
    result_won: int = Field(ge=0)
    # No default: the checker compares the claim only with the amount the payload names (산출세액 vs 납부세액 differ
    # by the 신고세액공제), so a reply that leaves it out is asked again rather than given a guess.
    result_field: str = Field(min_length=1)

    def inputs_dict(self) -> dict[str, Any]:
        """The inputs as `taxlaw.verdict.check_calculation` reads them (names normalised, 2e9 -> 2000000000)."""
        return normalise_inputs(self.kind, {item.name: item.value for item in self.inputs})

    def to_record(self) -> Calculation:
        return Calculation(
            kind=self.kind,
            year=self.year,
            inputs=self.inputs_dict(),
            result_won=self.result_won,
            result_field=self.result_field.strip(),
        )


class PairDraft(_Draft):
    """What a teacher produced for one request, before provenance is attached."""

    question: str = Field(min_length=1)
    answer: str = Field(min_length=1)
    audience: Literal["expert", "layperson"]
    citations: list[CitationDraft] = Field(default_factory=list)
    calculation: CalculationDraft | None = None


_CITATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["law", "article"],
    "properties": {
        "law": {"type": "string", "description": "법령명, e.g. 소득세법"},
        "article": {"type": "string", "description": "조/항/호, e.g. 제12조 제3호"},
    },
}

_CALCULATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["kind", "year", "inputs", "result_won", "result_field"],
    "properties": {
        "kind": {"type": "string", "enum": ["gift_tax", "inheritance_tax", "income_tax", "capital_gains_tax"]},
        "year": {"type": "integer", "minimum": 1990, "maximum": 2100, "description": "tax year of the rules used"},
        "inputs": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "value"],
                "properties": {
                    "name": {"type": "string", "description": "an input name the prompt lists for this kind"},
                    "value": {"anyOf": [{"type": "number"}, {"type": "string"}, {"type": "boolean"}]},
                },
            },
        },
        "result_won": {"type": "integer", "minimum": 0, "description": "the computed amount in whole won"},
        "result_field": {"type": "string", "enum": list(RESULT_FIELDS), "description": "what result_won is"},
    },
}

PAIR_JSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["question", "answer", "audience", "citations", "calculation"],
    "properties": {
        "question": {"type": "string", "description": "the question, in Korean"},
        "answer": {"type": "string", "description": "the answer, in Korean, citing the provisions it relies on"},
        "audience": {"type": "string", "enum": ["expert", "layperson"]},
        "citations": {"type": "array", "items": _CITATION_SCHEMA},
        "calculation": {"anyOf": [{"type": "null"}, _CALCULATION_SCHEMA]},
    },
}

SCHEMA_NAME = "tax_qa_pair"

# Several pairs per request (`distill.pairs_per_request` > 1): one object whose `pairs` array holds one item per pair
# asked for, each naming the id the prompt gave it ("p1", "p2", …) so a pair is matched to its audience and style
# even when the teacher reorders or drops some. No minItems/maxItems: the schema stays the same whatever the
# number of pairs, so it is one cacheable prefix for every request (the count is checked on our side).
PAIR_ITEM_JSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "question", "answer", "citations", "calculation"],
    "properties": {
        "id": {"type": "string", "description": "the id of the pair as the request lists it, e.g. p1"},
        **{k: v for k, v in PAIR_JSON_SCHEMA["properties"].items() if k != "audience"},
    },
}

PAIRS_JSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["pairs"],
    "properties": {"pairs": {"type": "array", "items": PAIR_ITEM_JSON_SCHEMA}},
}

PAIRS_SCHEMA_NAME = "tax_qa_pairs"


@dataclass(frozen=True)
class RequestShape:
    """What a request asks for besides its messages: the reply schema, the token limit, the cache routing key."""

    schema: dict[str, Any] = field(default_factory=lambda: PAIR_JSON_SCHEMA)
    schema_name: str = SCHEMA_NAME
    max_tokens: int | None = None  # None: the teacher's max_tokens
    cache_key: str | None = None  # OpenAI prompt_cache_key
    tool_description: str | None = None  # Anthropic's forced tool; None: the pair tool's description
