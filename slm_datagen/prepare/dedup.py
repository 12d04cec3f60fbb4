"""De-duplication: exact (hash of the normalised text) and near duplicates (MinHash + LSH), streaming.

Documents arrive one at a time; only what the decisions need stays in memory: a 16-byte digest per kept document,
its MinHash signature (num_perm × 4 bytes) and the LSH band tables. Texts are never held.

What counts as the same document
- The comparison text is the cleaned text with everything but letters and digits removed, lower-cased: sources
  disagree on Korean spacing (띄어쓰기), punctuation and line breaks, and none of that changes the content.
- Near duplicates are found on character n-grams (`dedup.ngram`, default 5) of that text. Character, not word,
  n-grams because Korean words carry particles (법인이/법인은/법인의), so word shingles of two copies that differ in
  one particle share little; n-grams run over NFC syllables, one syllable per code point (clean.py made the text
  NFC), never over UTF-8 bytes, which would cut a syllable into three meaningless pieces.
- Statute articles are compared only with other versions of the *same* article (law name + 조 + 가지번호): two
  different articles worded alike (the same boilerplate in 소득세법 and 법인세법) are separate provisions with their
  own citations and are both kept. Decisions, rulings and interpretations are compared across those kinds.

Which copy is kept (deterministic for a given input order)
- Decisions, rulings, interpretations: the first one seen in documents.jsonl.
- Statute articles: the version with the newest `effective_date`; on a tie or a missing date, the first seen. A
  newer version that arrives later *replaces* the kept one; the caller drops the chunks it already wrote for it.

Why datasketch, and why the signature is computed here
datasketch supplies the seeded permutations (scheme "affine32"), `LeanMinHash` and `MinHashLSH` (band tables and
the optimal band/row split for a threshold) — the parts that are easy to get subtly wrong. Its `update_batch`
applies the permutations as an (n_shingles × num_perm) product, which measured 2 ms per 2,500-character document
(plus ~2 ms turning a numpy array into the Python list it expects): four minutes for a 400 MB corpus on that step
alone. `MinHasher.signature` applies the same permutations and the same MurmurHash3 pre-mix in a (num_perm ×
n_shingles) layout with a reused buffer, ~0.2 ms for the same document; tests/test_prepare_dedup.py checks that
the two give bit-identical signatures, so an upgrade of datasketch that changes its scheme fails the tests
instead of silently mixing schemes.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import Literal

import numpy as np
from datasketch import LeanMinHash, MinHash, MinHashLSH

from slm_forest.config import DedupConfig
from slm_forest.records import Document

# LSH weights (false positive, false negative). The candidates are verified against the stored signature, so a
# false positive costs one comparison while a false negative is a duplicate let through: with (0.1, 0.9) a pair
# exactly at threshold 0.9 is a candidate 81% of the time and a pair at 0.95 99% of the time, against 31% and 80%
# with datasketch's default (0.5, 0.5).
LSH_WEIGHTS = (0.1, 0.9)
MINHASH_SEED = 1  # datasketch's default; fixed so signatures are comparable across runs
_SCHEME = "affine32"
_BLOCK = 8192  # shingles per block of the signature product: bounds the temporary to num_perm × 8192 × 4 bytes
_POLY = np.uint64(0x100000001B3)  # FNV-64 prime: odd, so the rolling polynomial hash mixes every code point

Method = Literal["unique", "exact", "near"]


def _fold_table() -> np.ndarray:
    """For every BMP code point: 0 if it is not a letter or digit, else its lower-case code point."""
    table = np.zeros(0x10000, dtype=np.uint32)
    for code in range(0x10000):
        char = chr(code)
        if char.isalnum():
            lower = char.lower()
            table[code] = ord(lower) if len(lower) == 1 else code
    return table


# Built once (~20 ms). A table lookup over the UTF-32 array runs ~10× faster than `re.sub(r"[\W_]+", "", text)`.
_FOLD = _fold_table()


def comparison_codes(text: str) -> np.ndarray:
    """The code points two copies are compared on: letters and digits only, lower-cased (see the docstring)."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    if codes.size and int(codes.max()) > 0xFFFF:
        # Outside the BMP (rare CJK extensions, emoji): kept as they are.
        folded = np.where(codes > 0xFFFF, codes, _FOLD[np.minimum(codes, 0xFFFF)])
    else:
        folded = _FOLD[codes]
    return folded[folded != 0]


def comparison_text(text: str) -> str:
    """`comparison_codes` as a string, for reading and tests."""
    return comparison_codes(text).tobytes().decode("utf-32-le")


def _fmix32(values: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finaliser, the pre-mix datasketch applies to inputs under the affine32 scheme."""
    values = values ^ (values >> np.uint32(16))
    values = values * np.uint32(0x85EBCA6B)
    values = values ^ (values >> np.uint32(13))
    values = values * np.uint32(0xC2B2AE35)
    return values ^ (values >> np.uint32(16))


class MinHasher:
    """MinHash signatures of character n-grams with datasketch's permutations (see the module docstring)."""

    def __init__(self, num_perm: int, ngram: int) -> None:
        self.num_perm = num_perm
        self.ngram = ngram
        template = MinHash(num_perm=num_perm, seed=MINHASH_SEED, hashfunc=int, scheme=_SCHEME)
        a, b = template.permutations
        self._a = np.ascontiguousarray(a, dtype=np.uint32).reshape(-1, 1)
        self._b = np.ascontiguousarray(b, dtype=np.uint32).reshape(-1, 1)
        self._empty = template.hashvalues.copy()
        self._buffer = np.empty((num_perm, _BLOCK), dtype=np.uint32)

    def shingles(self, codes: np.ndarray) -> np.ndarray:
        """32-bit hashes of every n-gram of `codes` (comparison code points); one shingle if there are fewer."""
        codes = codes.astype(np.uint64)
        n = min(self.ngram, len(codes))
        if n == 0:
            return np.empty(0, dtype=np.uint32)
        count = len(codes) - n + 1
        hashes = np.zeros(count, dtype=np.uint64)
        for offset in range(n):
            hashes = hashes * _POLY + codes[offset : offset + count]  # wraps modulo 2**64, as intended
        return (hashes ^ (hashes >> np.uint64(32))).astype(np.uint32)

    def signature_of_shingles(self, shingles: np.ndarray) -> np.ndarray:
        """Same values as `MinHash(hashfunc=int, scheme="affine32").update_batch(shingles.tolist())`."""
        signature = self._empty.copy()
        for start in range(0, len(shingles), _BLOCK):
            block = _fmix32(shingles[start : start + _BLOCK])
            out = self._buffer[:, : len(block)]
            np.multiply(self._a, block, out=out)  # uint32 arithmetic wraps modulo 2**32, as datasketch's does
            np.add(out, self._b, out=out)
            np.minimum(signature, out.min(axis=1), out=signature)
        return signature

    def signature(self, codes: np.ndarray) -> np.ndarray:
        return self.signature_of_shingles(self.shingles(codes))


@functools.lru_cache(maxsize=8)
def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) for LSH_WEIGHTS; datasketch integrates numerically for ~0.3 s, so it is done once per setting."""
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=LSH_WEIGHTS)
    return lsh.b, lsh.r


def make_hasher(cfg: DedupConfig) -> MinHasher | None:
    """The signature maker for these settings (None when near de-duplication is off)."""
    return MinHasher(cfg.num_perm, cfg.ngram) if cfg.near else None


@dataclass(frozen=True)
class Fingerprint:
    """What the index needs to know about one document; computed without the index, so in worker processes."""

    doc_id: str
    statute: bool
    group: str  # "" for decisions/rulings/interpretations; law name + 조 + 가지번호 for a statute article
    effective_date: str | None
    digest: bytes  # of the group and the comparison text: equal digests are exact duplicates
    signature: np.ndarray | None  # None when near de-duplication is off or there is nothing to compare


def fingerprint(doc: Document, hasher: MinHasher | None) -> Fingerprint:
    """Fingerprint a cleaned document (comparison text, group, digest and, with a hasher, its MinHash)."""
    statute = doc.kind == "statute_article"
    # Statute articles are only compared with versions of the same article (see the module docstring).
    group = f"{doc.law_name}\x1f{doc.article_no}\x1f{doc.article_branch}" if statute else ""
    codes = comparison_codes(doc.text)
    digest_of = hashlib.blake2b(group.encode("utf-8") + b"\x00", digest_size=16)
    digest_of.update(codes.tobytes())
    digest = digest_of.digest()
    signature = hasher.signature(codes) if hasher is not None and codes.size else None
    return Fingerprint(doc.id, statute, group, doc.effective_date if statute else None, digest, signature)


@dataclass(frozen=True)
class Verdict:
    """The decision for one document.

    keep=False: `duplicate_of` is the id of the kept copy. keep=True with `replaces` set: this (newer) statute
    version replaces the kept copy at ordinal `replaces`, whose id is `duplicate_of`. `duplicate_tag` is the tag
    that copy was checked with (the caller's source label, see `Deduplicator.check`).
    """

    keep: bool
    method: Method = "unique"
    duplicate_of: str | None = None
    similarity: float = 1.0
    replaces: int | None = None
    duplicate_tag: int = 0


_UNIQUE = Verdict(keep=True)


class Deduplicator:
    """Streaming exact + near de-duplication; `check` one fingerprint at a time, in input order."""

    def __init__(self, cfg: DedupConfig) -> None:
        self.cfg = cfg
        self._lsh = (
            MinHashLSH(threshold=cfg.threshold, num_perm=cfg.num_perm, params=lsh_params(cfg.threshold, cfg.num_perm))
            if cfg.near
            else None
        )
        self._exact: dict[bytes, int] = {}  # digest -> row
        self._groups: dict[str, int] = {}
        # One row per kept document; the row number is the LSH key and indexes the signature matrix.
        self._row_ordinal: list[int] = []
        self._row_id: list[str] = []
        self._row_group: list[int] = []
        self._row_date: list[str | None] = []
        self._row_tag: list[int] = []
        self._signatures = np.empty((1024 if cfg.near else 0, cfg.num_perm), dtype=np.uint32)

    @property
    def kept(self) -> int:
        return len(self._row_id)

    def check(self, ordinal: int, fp: Fingerprint, tag: int = 0) -> Verdict:
        """Decide whether the document is a duplicate of one kept earlier, and remember it if it is kept.

        `tag` is remembered with a kept document and handed back in the verdict of a later copy of it (the caller
        uses it for the source the document came from).
        """
        if not (self.cfg.exact or self.cfg.near):
            return _UNIQUE
        group = self._groups.setdefault(fp.group, len(self._groups))
        if self.cfg.exact and (row := self._exact.get(fp.digest)) is not None:
            return self._duplicate(row, ordinal, fp, "exact", 1.0, tag)
        if self._lsh is not None and fp.signature is not None:
            match = self._best_match(fp.signature, group)
            if match is not None:
                return self._duplicate(match[0], ordinal, fp, "near", match[1], tag)
        self._add(ordinal, fp, group, tag)
        return _UNIQUE

    def _lean(self, signature: np.ndarray) -> LeanMinHash:
        return LeanMinHash(seed=MINHASH_SEED, hashvalues=signature, scheme=_SCHEME)

    def _best_match(self, signature: np.ndarray, group: int) -> tuple[int, float] | None:
        assert self._lsh is not None
        candidates = sorted(key for key in self._lsh.query(self._lean(signature)) if self._row_group[key] == group)
        if not candidates:
            return None
        # Verify on the signatures: LSH candidates include pairs below the threshold (see LSH_WEIGHTS).
        similarities = (self._signatures[candidates] == signature).mean(axis=1)
        best = int(np.argmax(similarities))  # the first maximum: ties go to the earliest kept document
        if similarities[best] < self.cfg.threshold:
            return None
        return candidates[best], float(similarities[best])

    def _duplicate(
        self, row: int, ordinal: int, fp: Fingerprint, method: Method, similarity: float, tag: int
    ) -> Verdict:
        kept_date = self._row_date[row]
        kept_tag = self._row_tag[row]
        newer = (
            fp.statute
            and fp.effective_date is not None
            and (kept_date is None or fp.effective_date > kept_date)  # ISO dates compare as strings
        )
        if not newer:
            return Verdict(
                keep=False, method=method, duplicate_of=self._row_id[row], similarity=similarity, duplicate_tag=kept_tag
            )
        # The newer statute version takes over the row: same group, so later copies of either text match it.
        replaced = Verdict(
            keep=True,
            method=method,
            duplicate_of=self._row_id[row],
            similarity=similarity,
            replaces=self._row_ordinal[row],
            duplicate_tag=kept_tag,
        )
        self._row_ordinal[row] = ordinal
        self._row_id[row] = fp.doc_id
        self._row_date[row] = fp.effective_date
        self._row_tag[row] = tag
        if self.cfg.exact:
            self._exact[fp.digest] = row
        if self._lsh is not None and fp.signature is not None and method == "near":
            self._lsh.remove(row)
            self._signatures[row] = fp.signature
            self._lsh.insert(row, self._lean(fp.signature), check_duplication=False)
        return replaced

    def _add(self, ordinal: int, fp: Fingerprint, group: int, tag: int) -> None:
        row = len(self._row_id)
        self._row_tag.append(tag)
        self._row_ordinal.append(ordinal)
        self._row_id.append(fp.doc_id)
        self._row_group.append(group)
        self._row_date.append(fp.effective_date)
        if self.cfg.exact:
            self._exact[fp.digest] = row
        if self._lsh is None:
            return
        if row >= len(self._signatures):
            grown = np.empty((max(1024, 2 * len(self._signatures)), self.cfg.num_perm), dtype=np.uint32)
            grown[: len(self._signatures)] = self._signatures
            self._signatures = grown
        if fp.signature is None:
            # No letters or digits at all: nothing to compare on; such a row never enters the LSH index.
            self._signatures[row] = 0
            return
        self._signatures[row] = fp.signature
        self._lsh.insert(row, self._lean(fp.signature), check_duplication=False)
