"""Benchmark of the prepare step on a synthetic rulings-like corpus (default 400 MB, like the seed's 417 MB).

    python bench/prepare.py                 # 400 MB and 40 MB
    python bench/prepare.py --size-mb 50    # a quicker look

It writes a documents.jsonl of `Document` records: Korean text composed from a vocabulary of real tax phrases, with
random amounts, dates, article numbers, case and document numbers, a little planted PII, and a planted share of
exact copies (5%) and near copies (5%, two or three characters changed). Then it runs `prepare_documents` — the
function `slm prepare` runs — on the first tenth of the file and on the whole file, each in its own subprocess, and
prints throughput, peak memory and the time ratios.

Peak memory is that of the whole process tree: while a run goes, this process samples /proc every 50 ms and sums the
RSS of the prepare process and all its worker processes *at the same instant*; the peak of those sums is reported
(the largest single process is printed beside it). Summed RSS counts pages that forked workers share with their
parent once per process, so it is an upper bound on the memory the machine really gave the run.

Targets on 2 cores: the full size in ≤ 5 min, peak RSS ≤ 2 GB, 10× the data in ≤ 12× the time.
The last line is machine-readable: `prepare: mb_per_s=<x> peak_rss_mb=<y> scale_ratio=<z>`; mb_per_s is wall-clock
at full size, peak_rss_mb the process-tree peak, scale_ratio the CPU-time ratio (the wall-time ratio is printed on
the line before it).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# ------------------------------------------------------------------------------------------------ the vocabulary
# Real phrases from 국세청 rulings and 대법원 decisions; sentences join 3–5 of them with random figures, so two
# generated documents share words but not long character runs (as two different real rulings do).
SUBJECTS = [
    "거주자",
    "비거주자",
    "내국법인",
    "외국법인",
    "상속인",
    "수증자",
    "피상속인",
    "사업자",
    "간이과세자",
    "일반과세자",
    "임대사업자",
    "양도인",
    "양수인",
    "원천징수의무자",
    "납세의무자",
    "연대납세의무자",
    "공익법인",
    "종교단체",
    "학교법인",
    "주택임대사업자",
    "근로소득자",
    "개인사업자",
    "법인의 임원",
    "특수관계인",
    "출자자",
    "수탁자",
]
OBJECTS = [
    "주거이전비 및 이사비",
    "양도소득세",
    "상속재산가액",
    "증여재산공제",
    "부가가치세 매입세액",
    "종합소득금액",
    "근로소득공제",
    "퇴직소득",
    "배당소득",
    "이자소득",
    "사업소득",
    "기타소득",
    "1세대 1주택 비과세",
    "취득가액",
    "필요경비",
    "감가상각비",
    "접대비",
    "기부금",
    "손금불산입액",
    "익금산입액",
    "과세표준",
    "산출세액",
    "신고세액공제",
    "가산세",
    "부과제척기간",
    "경정청구",
    "납세증명서",
    "간이지급명세서",
    "세금계산서",
    "영세율 적용",
    "면세사업",
    "공통매입세액",
    "대손금",
    "토지 등 양도소득",
    "주식 양도차익",
    "가업상속공제",
    "동거주택 상속공제",
    "배우자 상속공제",
    "재산세 과세기준일",
    "종합부동산세",
    "중간예납세액",
]
CONDITIONS = [
    "공익사업을 위한 토지 등의 취득 및 보상에 관한 법률에 따라 지급되는 경우",
    "사업자등록을 하지 아니한 상태에서 재화를 공급한 경우",
    "상속개시일 전 10년 이내에 피상속인이 상속인에게 증여한 경우",
    "해당 과세기간 종료일 현재 국내에 주소를 둔 경우",
    "법정신고기한 내에 과세표준신고서를 제출하지 아니한 경우",
    "특수관계인에게 시가보다 낮은 가액으로 양도한 경우",
    "실지거래가액을 확인할 수 없는 경우",
    "임대주택을 5년 이상 임대한 후 양도하는 경우",
    "국외에 있는 상속재산이 포함된 경우",
    "공동사업자가 출자지분을 양도하는 경우",
    "조합원입주권을 승계취득한 경우",
    "법인이 해산등기를 한 이후 잔여재산을 분배하는 경우",
]
PREDICATES = [
    "납세증명서 제출대상에 해당하지 않음",
    "과세표준에 산입하여야 하는 것임",
    "비과세 대상에 해당하는 것임",
    "매입세액 공제 대상에 해당하지 아니하는 것임",
    "부과제척기간의 기산일은 신고기한의 다음 날임",
    "해당 금액을 필요경비에 산입할 수 있는 것임",
    "상속세 과세가액에 가산하는 것임",
    "증여세 과세대상에 해당하는 것임",
    "원천징수하여야 하는 것임",
    "경정청구의 대상이 되지 아니하는 것임",
    "가산세를 부과하지 아니하는 것임",
    "사실판단할 사항임",
]
LAWS = ["소득세법", "법인세법", "부가가치세법", "상속세 및 증여세법", "국세기본법", "국세징수법", "조세특례제한법"]
REASONS = [
    "원심판결 이유와 기록에 따르면 다음과 같은 사실을 알 수 있다",
    "위에서 본 법리와 관련 규정의 문언, 체계 및 취지 등을 종합하면 이와 같이 보아야 한다",
    "이러한 원심의 판단은 정당하고 거기에 상고이유 주장과 같이 법리를 오해한 잘못이 없다",
    "처분청은 청구인이 제출한 증빙을 인정하지 아니하고 이 사건 처분을 하였다",
    "청구인은 해당 금액이 실질적으로 사업과 관련된 지출이라고 주장한다",
]
SURNAMES = "김이박최정강조윤장임한오서신권황안송류홍"
GIVEN = "민서지현준우하은도윤시아예린주원수빈건태성호영진"
OFFICES = ["서대문", "금천", "강남", "역삼", "수원", "분당", "동래", "중부", "남대문", "삼성"]


def _amount(rng: random.Random) -> str:
    return f"{rng.randrange(1, 9_999) * 10_000:,}원"


def _date(rng: random.Random) -> str:
    return f"{rng.randrange(2005, 2025)}. {rng.randrange(1, 13)}. {rng.randrange(1, 29)}."


def _article(rng: random.Random) -> str:
    branch = f"의{rng.randrange(2, 5)}" if rng.random() < 0.2 else ""
    return f"{rng.choice(LAWS)} 제{rng.randrange(1, 180)}조{branch} 제{rng.randrange(1, 8)}항"


def _sentence(rng: random.Random) -> str:
    form = rng.randrange(4)
    if form == 0:
        return (
            f"{rng.choice(SUBJECTS)}가 {_date(rng)} {rng.choice(OBJECTS)} {_amount(rng)}을 지급받은 {rng.choice(CONDITIONS)} "
            f"{_article(rng)}에 따라 {rng.choice(PREDICATES)}."
        )
    if form == 1:
        return f"{rng.choice(REASONS)}({_article(rng)} 참조)."
    if form == 2:
        return (
            f"{rng.choice(SUBJECTS)}의 {rng.choice(OBJECTS)}은 {rng.choice(CONDITIONS)}에도 {_amount(rng)}을 한도로 "
            f"{rng.choice(PREDICATES)}."
        )
    return (
        f"피고는 {_date(rng)} {rng.choice(SUBJECTS)}에게 {rng.choice(OBJECTS)} {_amount(rng)}(가산세 포함)을 "
        f"{rng.choice(['고지하였다', '경정하였다', '부과하였다'])}."
    )


def _paragraph(rng: random.Random, sentences: int) -> str:
    return " ".join(_sentence(rng) for _ in range(sentences))


def _planted_pii(rng: random.Random) -> str:
    name = rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN)
    return rng.choice(
        [
            f"질의인 {name}(연락처 010-{rng.randrange(1000, 9999)}-{rng.randrange(1000, 9999)})은 다음과 같이 질의하였다.",
            f"환급금은 계좌 {rng.randrange(100, 999)}-{rng.randrange(100, 999)}-{rng.randrange(100000, 999999)}로 지급되었다.",
            f"원고 {name}(주민등록번호 {rng.randrange(500101, 991231)}-1******)은 이 사건 주택을 양도하였다.",
        ]
    )


def _document(rng: random.Random, index: int) -> dict:
    kind = rng.choices(["ruling", "interpretation", "precedent"], weights=[7, 2, 1])[0]
    year = rng.randrange(2010, 2025)
    question = f"{rng.choice(SUBJECTS)}의 {rng.choice(OBJECTS)}이 {rng.choice(CONDITIONS)} 과세되는지 여부"
    answer = f"{rng.choice(CONDITIONS)} {rng.choice(OBJECTS)}은 {rng.choice(PREDICATES)}"
    paragraphs = [_paragraph(rng, rng.randrange(2, 7)) for _ in range(rng.randrange(2, 14))]
    if rng.random() < 0.15:
        paragraphs.insert(1, _planted_pii(rng))
    if kind == "precedent":
        case_no = f"{year}두{rng.randrange(10000, 99999)}"
        office = rng.choice(OFFICES)
        text = "\n".join(
            [
                "【원고, 피상고인】 원고",
                f"【피고, 상고인】 {office}세무서장",
                "【주 문】",
                "상고를 기각한다.",
                "【이 유】",
            ]
            + [f"{n}. {p}" for n, p in enumerate(paragraphs, start=1)]
        )
        return {
            "id": f"prec-{index:08d}",
            "kind": kind,
            "title": f"{rng.choice(OBJECTS)}부과처분취소",
            "text": text,
            "source": "bench",
            "case_no": case_no,
            "court": "대법원",
            "decision_date": f"{year}-05-12",
            "related_laws": [_article(rng)],
        }
    office, field = rng.choice(["서면", "사전", "기준"]), rng.choice(["소득", "법인", "부가", "재산"])
    doc_no = f"{office}-{year}-법규{field}-{rng.randrange(1, 9999):04d}"
    text = "\n".join(["질의요지", question, "회신", answer, "사실관계", *paragraphs])
    return {
        "id": f"{kind}-{index:08d}",
        "kind": kind,
        "title": question,
        "text": text,
        "source": "bench",
        "doc_no": doc_no,
        "question": question,
        "answer": answer,
        "related_laws": [_article(rng)],
    }


def _near_copy(rng: random.Random, doc: dict, index: int) -> dict:
    """The same document with 2–3 characters replaced, as a re-typed or re-scanned copy would differ."""
    text = list(doc["text"])
    for _ in range(rng.randrange(2, 4)):
        text[rng.randrange(len(text))] = rng.choice("가나다라마바사")
    return {**doc, "id": f"near-{index:08d}", "text": "".join(text)}


def generate(path: Path, size_mb: float, seed: int = 7) -> dict[str, int]:
    """Write about `size_mb` MB of documents to `path`; returns what was planted."""
    rng = random.Random(seed)
    target = int(size_mb * 1_000_000)
    written = 0
    planted = {"documents": 0, "exact_copies": 0, "near_copies": 0}
    recent: list[dict] = []  # copies are taken from a window of recent documents: the generator stays small too
    with open(path, "w", encoding="utf-8") as out:
        index = 0
        while written < target:
            roll = rng.random()
            if recent and roll < 0.05:
                doc = {**rng.choice(recent), "id": f"copy-{index:08d}"}
                planted["exact_copies"] += 1
            elif recent and roll < 0.10:
                doc = _near_copy(rng, rng.choice(recent), index)
                planted["near_copies"] += 1
            else:
                doc = _document(rng, index)
                recent.append(doc)
                if len(recent) > 2000:
                    recent.pop(rng.randrange(len(recent)))
            line = json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n"
            out.write(line)
            written += len(line.encode("utf-8"))
            planted["documents"] += 1
            index += 1
    return planted


def _head(source: Path, target: Path, size_bytes: int) -> None:
    """The first lines of `source` up to `size_bytes`: the small run reads a prefix of the same corpus."""
    written = 0
    with open(source, "rb") as src, open(target, "wb") as out:
        for line in src:
            if written >= size_bytes:
                break
            out.write(line)
            written += len(line)


# ------------------------------------------------------------------------------------------------- measuring
def _cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024 if hasattr(os, "sysconf") else 4
_SAMPLE_EVERY_S = 0.05


def _children(pid: int) -> list[int]:
    """Direct children of `pid`, from /proc/<pid>/task/*/children (or, without it, every /proc/*/stat)."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    found: list[int] = []
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as handle:
                found += [int(child) for child in handle.read().split()]
        except FileNotFoundError:  # a kernel without CONFIG_PROC_CHILDREN: scan parent pids
            return [p for p in _all_pids() if _parent(p) == pid]
        except OSError:
            continue
    return found


def _all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _parent(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as handle:
            return int(handle.read().split()[1]) * _PAGE_KB
    except (OSError, IndexError, ValueError):
        return 0  # the process ended between listing and reading


def tree_rss_kb(root: int) -> tuple[int, int]:
    """(sum of the RSS of `root` and all its descendants, the largest of them), read at one instant."""
    total = largest = 0
    pending, seen = [root], set()
    while pending:
        pid = pending.pop()
        if pid in seen:
            continue
        seen.add(pid)
        rss = _rss_kb(pid)
        total += rss
        largest = max(largest, rss)
        pending += _children(pid)
    return total, largest


def _child(documents: Path, out_dir: Path, workers: int) -> None:
    """Run in a subprocess: prepare one file, print its wall and CPU seconds as JSON (the parent samples memory)."""
    from slm_datagen.prepare.process import prepare_documents, resolve_workers
    from slm_forest.config import PrepareConfig

    cfg = PrepareConfig(workers=workers)
    cpu_before = _cpu_seconds(resource.RUSAGE_SELF)
    started = time.perf_counter()
    outcome = prepare_documents(documents, out_dir, cfg, seed=42)
    seconds = time.perf_counter() - started
    cpu = _cpu_seconds(resource.RUSAGE_SELF) - cpu_before + _cpu_seconds(resource.RUSAGE_CHILDREN)
    result = {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "workers": resolve_workers(cfg, documents),
        "totals": outcome.totals(),
    }
    print(json.dumps(result))


def _measure(documents: Path, work: Path, workers: int) -> dict:
    """Run prepare on `documents` in a subprocess, sampling the memory of its process tree until it ends."""
    out_dir = work / f"out-{documents.stem}"
    command = [sys.executable, __file__, "--child", str(documents), str(out_dir), "--workers", str(workers)]
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        proc = subprocess.Popen(command, stdout=stdout, stderr=stderr, text=True)
        peak_tree = peak_single = samples = 0
        while proc.poll() is None:
            tree, single = tree_rss_kb(proc.pid)
            peak_tree, peak_single = max(peak_tree, tree), max(peak_single, single)
            samples += 1
            time.sleep(_SAMPLE_EVERY_S)
        stdout.seek(0)
        stderr.seek(0)
        out, err = stdout.read(), stderr.read()
    if proc.returncode != 0:
        sys.exit(f"prepare failed on {documents}:\n{err[-3000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    result["mb"] = documents.stat().st_size / 1_000_000
    result["peak_rss_mb"] = peak_tree / 1024
    result["peak_single_rss_mb"] = peak_single / 1024
    result["samples"] = samples
    shutil.rmtree(out_dir, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=400.0, help="size of the large corpus (the small is a tenth)")
    parser.add_argument("--workdir", type=Path, default=None, help="where the corpora go (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the generated corpora")
    parser.add_argument("--workers", type=int, default=0, help="prepare.workers (0: automatic, as in the stage)")
    parser.add_argument("--child", nargs=2, metavar=("DOCUMENTS", "OUT_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(Path(args.child[0]), Path(args.child[1]), args.workers)
        return

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-prepare-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        big = work / "documents-full.jsonl"
        small = work / "documents-tenth.jsonl"
        started = time.perf_counter()
        planted = generate(big, args.size_mb)
        _head(big, small, int(args.size_mb * 1_000_000 / 10))
        print(f"generated {big.stat().st_size / 1e6:.0f} MB in {time.perf_counter() - started:.0f}s: {planted}")

        runs = {"tenth": _measure(small, work, args.workers), "full": _measure(big, work, args.workers)}
        for name, run in runs.items():
            totals = run["totals"]
            print(
                f"{name:>5}: {run['mb']:7.1f} MB in {run['seconds']:6.1f}s wall ({run['cpu_seconds']:6.1f}s CPU, "
                f"{run['workers']} process(es)) = {run['mb'] / run['seconds']:5.2f} MB/s, peak RSS "
                f"{run['peak_rss_mb']:5.0f} MB (process tree summed over {run['samples']} samples; largest single "
                f"process {run['peak_single_rss_mb']:.0f} MB); {totals['documents_in']} docs, {totals['exact_duplicates']} exact + "
                f"{totals['near_duplicates']} near duplicates, {totals['chunks_out']} chunks, "
                f"{totals['pii_masked']} PII masks"
            )
        full, tenth = runs["full"], runs["tenth"]
        mb_per_s = full["mb"] / full["seconds"]
        peak = max(full["peak_rss_mb"], tenth["peak_rss_mb"])
        # Both ratios are normalised to exactly 10× the bytes (the tenth is cut at a line boundary). The reported
        # scale ratio uses CPU seconds (main process + workers): it measures how the work grows with the data,
        # which wall time on a shared machine does not (the two runs may meet different loads). The wall ratio is
        # printed beside it.
        normalise = 10 * tenth["mb"] / full["mb"]
        wall_ratio = full["seconds"] / tenth["seconds"] * normalise
        cpu_ratio = full["cpu_seconds"] / tenth["cpu_seconds"] * normalise
        load = os.getloadavg()[0]
        print(
            f"targets: full size ≤ 300 s wall ({full['seconds']:.0f} s), peak RSS ≤ 2048 MB ({peak:.0f} MB), "
            f"10× data in ≤ 12× time (CPU {cpu_ratio:.2f}×, wall {wall_ratio:.2f}×); "
            f"1-min load average {load:.1f} on {os.cpu_count()} cores"
        )
        print(f"scale: cpu_ratio={cpu_ratio:.2f} wall_ratio={wall_ratio:.2f} (10x the data; target <= 12)")
        print(f"prepare: mb_per_s={mb_per_s:.2f} peak_rss_mb={peak:.0f} scale_ratio={cpu_ratio:.2f}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
