"""The vocabulary of the calculator's inputs: who gave a gift to whom, what was transferred, how long it was held.

Each enum accepts its value and, for the donor relation, the Korean labels people write ("부모", "배우자", "기타친족").
"""

from __future__ import annotations

from datetime import date
from enum import Enum


class DonorRelation(str, Enum):
    """Who the donor is *to the donee*, i.e. the direction of the gift (제53조 is written from the donee's side).

    "아들이 아버지에게 증여" is LINEAL_DESCENDANT (child → parent), "아버지가 아들에게" LINEAL_ASCENDANT (parent → child).
    A grandparent is a 직계존속 for the 증여재산공제 but carries the 세대생략 할증 of 제57조, so it is its own value.
    """

    SPOUSE = "spouse"  # 배우자
    LINEAL_ASCENDANT = "lineal_ascendant"  # 부모 → 자녀 (직계존속, incl. a parent's spouse by marriage)
    GRANDPARENT = "grandparent"  # 조부모·증조부모 → 손자녀·증손자녀: 직계존속, with the 세대생략 할증
    LINEAL_DESCENDANT = "lineal_descendant"  # 자녀·손자녀 → 부모·조부모 (직계비속)
    OTHER_RELATIVE = "other_relative"  # 그 밖의 친족: 6촌 이내 혈족, 4촌 이내 인척
    UNRELATED = "unrelated"  # 타인: no deduction


_RELATION_ALIASES: dict[str, DonorRelation] = {
    "배우자": DonorRelation.SPOUSE,
    "spouse": DonorRelation.SPOUSE,
    "직계존속": DonorRelation.LINEAL_ASCENDANT,
    "부모": DonorRelation.LINEAL_ASCENDANT,
    "부": DonorRelation.LINEAL_ASCENDANT,
    "모": DonorRelation.LINEAL_ASCENDANT,
    "아버지": DonorRelation.LINEAL_ASCENDANT,
    "어머니": DonorRelation.LINEAL_ASCENDANT,
    "parent_to_child": DonorRelation.LINEAL_ASCENDANT,
    "조부모": DonorRelation.GRANDPARENT,
    "할아버지": DonorRelation.GRANDPARENT,
    "할머니": DonorRelation.GRANDPARENT,
    "외조부모": DonorRelation.GRANDPARENT,
    "grandparent": DonorRelation.GRANDPARENT,
    "grandparent_to_grandchild": DonorRelation.GRANDPARENT,
    "parent": DonorRelation.LINEAL_ASCENDANT,
    "lineal_ascendant": DonorRelation.LINEAL_ASCENDANT,
    "직계비속": DonorRelation.LINEAL_DESCENDANT,
    "자녀": DonorRelation.LINEAL_DESCENDANT,
    "child": DonorRelation.LINEAL_DESCENDANT,
    "child_to_parent": DonorRelation.LINEAL_DESCENDANT,
    "lineal_descendant": DonorRelation.LINEAL_DESCENDANT,
    "기타친족": DonorRelation.OTHER_RELATIVE,
    "그 밖의 친족": DonorRelation.OTHER_RELATIVE,
    "친족": DonorRelation.OTHER_RELATIVE,
    "other_relative": DonorRelation.OTHER_RELATIVE,
    "타인": DonorRelation.UNRELATED,
    "기타": DonorRelation.UNRELATED,
    "unrelated": DonorRelation.UNRELATED,
    "other": DonorRelation.UNRELATED,
}


def donor_relation(value: str | DonorRelation) -> DonorRelation:
    """Accept the enum, its value, or a Korean label ("직계존속", "부모", "배우자", "기타친족", "타인")."""
    if isinstance(value, DonorRelation):
        return value
    key = " ".join(str(value).split()).lower()
    if key in _RELATION_ALIASES:
        return _RELATION_ALIASES[key]
    raise ValueError(f"unknown donor relation {value!r}; use one of {sorted(r.value for r in DonorRelation)}")


class AssetKind(str, Enum):
    """What was transferred, for 소득세법 제104조①'s short-holding rates."""

    LAND_BUILDING = "land_building"  # 토지·건물(주택 제외)·부동산에 관한 권리
    HOUSING = "housing"  # 주택 및 조합원입주권
    PRESALE_RIGHT = "presale_right"  # 분양권


class HoldingPeriod(str, Enum):
    UNDER_1Y = "under_1y"
    FROM_1Y_TO_2Y = "1y_to_2y"
    TWO_YEARS_OR_MORE = "2y_or_more"


def holding_period_between(acquired: date, transferred: date) -> HoldingPeriod:
    """보유기간 (제95조④: 취득일부터 양도일까지) bucketed the way 제104조① uses it."""
    if transferred < acquired:
        raise ValueError("transfer date before acquisition date")

    def add_years(d: date, years: int) -> date:
        try:
            return d.replace(year=d.year + years)
        except ValueError:  # 29 February
            return d.replace(year=d.year + years, day=28)

    if transferred < add_years(acquired, 1):
        return HoldingPeriod.UNDER_1Y
    if transferred < add_years(acquired, 2):
        return HoldingPeriod.FROM_1Y_TO_2Y
    return HoldingPeriod.TWO_YEARS_OR_MORE


class VatSector(str, Enum):
    """간이과세자 업종 for the 업종별 부가가치율 of 부가가치세법 시행령 제111조② (2021-07-01 이후)."""

    RETAIL_FOOD = "retail_food"  # 소매업, 재생용 재료수집·판매업, 음식점업: 15%
    MANUFACTURING = "manufacturing"  # 제조업, 농업·임업·어업, 소화물 전문 운송업: 20%
    LODGING = "lodging"  # 숙박업: 25%
    CONSTRUCTION_TRANSPORT_ICT = "construction_transport_ict"  # 건설업, 운수·창고업, 정보통신업: 30%
    FINANCE_PROFESSIONAL_REAL_ESTATE = "finance_professional_real_estate"  # 금융·보험 관련, 전문·과학·기술, 사업시설관리·사업지원·임대, 부동산 관련 서비스업, 부동산임대업: 40%
    OTHER_SERVICES = "other_services"  # 그 밖의 서비스업: 30%
