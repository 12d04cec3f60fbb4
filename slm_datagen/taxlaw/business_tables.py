"""법인세법 and 부가가치세법 tables, as dated data (see tables.Versioned)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from slm_datagen.taxlaw.inputs import VatSector
from slm_datagen.taxlaw.tables import Bracket, RateSchedule, Versioned

# 법인세법 제55조① 세율, by the 사업연도 that begins on or after the date.
CORPORATE_TAX_RATES = Versioned(
    "법인세법 제55조 세율",
    (
        (
            date(2018, 1, 1),
            RateSchedule(
                name="법인세 세율 (2018.1.1~2022.12.31 개시 사업연도)",
                effective_from=date(2018, 1, 1),
                brackets=(
                    Bracket(200_000_000, 10),
                    Bracket(20_000_000_000, 20),
                    Bracket(300_000_000_000, 22),
                    Bracket(None, 25),
                ),
                published_progressive_deductions=(0, 20_000_000, 420_000_000, 9_420_000_000),
                basis="법인세법 제55조① (2017.12.19 개정, 2018.1.1 이후 개시 사업연도): 3,000억 초과 25% 신설",
            ),
        ),
        (
            date(2023, 1, 1),
            RateSchedule(
                name="법인세 세율 (2023.1.1 이후 개시 사업연도)",
                effective_from=date(2023, 1, 1),
                brackets=(
                    Bracket(200_000_000, 9),
                    Bracket(20_000_000_000, 19),
                    Bracket(300_000_000_000, 21),
                    Bracket(None, 24),
                ),
                published_progressive_deductions=(0, 20_000_000, 420_000_000, 9_420_000_000),
                basis="법인세법 제55조① (2022.12.31 개정, 2023.1.1 이후 개시 사업연도): 각 구간 1%p 인하",
            ),
        ),
    ),
)

# 부가가치세법 제30조 세율 10%; the numbering of 제30조·제37조·제63조 is that of the 전부개정 법률 (2013.7.1 시행).
VAT_RATE_PCT = Versioned("부가가치세법 제30조 세율", ((date(2013, 7, 1), 10),))


@dataclass(frozen=True)
class SimplifiedVatTable:
    """간이과세자 납부세액 (부가가치세법 제63조, 2021.7.1 이후): 공급대가 × 업종별 부가가치율 × 10%, less 0.5% of the
    매입 공급대가 on 세금계산서 등 (제63조③, never more than the 납부세액: 제63조⑤), and no 납부의무 below the
    exemption threshold (제69조①)."""

    value_added_pct: dict[VatSector, int]
    purchase_credit_permille: int
    exemption_below: int
    basis: str


SIMPLIFIED_VAT = Versioned(
    "부가가치세법 제63조 간이과세자 납부세액",
    (
        (
            date(2021, 7, 1),
            SimplifiedVatTable(
                value_added_pct={
                    VatSector.RETAIL_FOOD: 15,
                    VatSector.MANUFACTURING: 20,
                    VatSector.LODGING: 25,
                    VatSector.CONSTRUCTION_TRANSPORT_ICT: 30,
                    VatSector.FINANCE_PROFESSIONAL_REAL_ESTATE: 40,
                    VatSector.OTHER_SERVICES: 30,
                },
                purchase_credit_permille=5,
                exemption_below=48_000_000,
                basis="제63조②③ (2020.12.22 개정, 2021.7.1 시행), 시행령 제111조② 업종별 부가가치율, 제69조① 납부의무 면제",
            ),
        ),
    ),
)
