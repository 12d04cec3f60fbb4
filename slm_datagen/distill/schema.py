"""The pair a teacher must return: one JSON object per request, the same for every provider.

`PAIR_JSON_SCHEMA` is the JSON Schema sent to the providers (OpenAI `response_format` json_schema with strict mode,
Anthropic's forced tool `input_schema`, and written into the prompt for `openai_compatible` servers). Strict mode
needs every property required and no free-form maps, so calculation inputs travel as a list of {name, value} and
become `Calculation.inputs` (a dict) when the pair is turned into a `QAPair`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

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
    value: float | int | str


class CalculationDraft(_Draft):
    kind: CalculationKind
    year: int = Field(ge=1990, le=2100)
    inputs: list[CalcInput]
    result_won: int = Field(ge=0)
    result_field: str = "computed_tax"

    def to_record(self) -> Calculation:
        inputs: dict[str, Any] = {}
        for item in self.inputs:
            value = item.value
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            inputs[item.name] = value
        return Calculation(
            kind=self.kind, year=self.year, inputs=inputs, result_won=self.result_won, result_field=self.result_field
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
                "properties": {"name": {"type": "string"}, "value": {"type": "number"}},
            },
        },
        "result_won": {"type": "integer", "minimum": 0, "description": "the computed amount in whole won"},
        "result_field": {"type": "string", "description": "what result_won is, e.g. computed_tax"},
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
