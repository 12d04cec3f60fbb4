"""The collect stage: statutes, precedents and interpretations from law.go.kr, files on disk and the bundled corpus.

Modules, one concern each:
- `stage.py`        run_collect: read every configured source, de-duplicate, write documents.jsonl atomically
- `bundled.py`      the demo corpus shipped in `slm_datagen/data/`
- `legalize_source.py` a legalize-kr checkout: which law files (`laws`), which version (`as_of`)
- `legalize.py`     legalize-kr Markdown laws (front matter, 장/절/관, 조/항/호/목) -> Document records
- `legalize_git.py` the version in force on a date, from the file's git history (git log / git show)
- `dumps.py`        files people already have (law.go.kr responses, precedent Markdown, casebooks, seed layouts)
- `listing.py`      the paths of a dump source: links followed once, unreadable paths kept with their reason
- `temporaries.py`  temporary files a killed collect left, removed at the start of the next
- `shapes.py`       which parser a file's content calls for
- `casebook.py`     국세청 interpretations: the 2025 casebook and the seed's tax-law-judgment/data_main.json
- `precedent_md.py` precedents saved as Markdown with front matter
- `statute_units.py` flat 조/항/호 rows -> law.go.kr `법령` responses
- `problems.py`     InputProblem: a malformed input with its position
- `encodings.py`    bytes -> text (UTF-8 with/without BOM, CP949/EUC-KR), checked chunk by chunk for big files
- `jsonstream.py`   the items of a top-level JSON array one at a time (bounded memory for 200 MB seed files)
- `lawgo_xml.py`    law.go.kr XML -> the same dict shape as its JSON
- `lawgo_parse.py`  law.go.kr detail responses (법령, PrecService, ExpcService) -> Document records
- `lawtext.py`      cleaning of law.go.kr text: <br/>, amendment tags, full-width spaces, <img> tables
- `dates.py`        the date spellings seen in the data -> ISO
- `references.py`   참조조문 / 관련법령 -> ArticleRef (notes in parentheses, 구법 marked former)
- `envelopes.py`    HTTP-200 error bodies of law.go.kr
- `lawgo_client.py` the HTTP client: rate limit, retries, Retry-After, on-disk response cache, masked OC
- `lawgo_source.py` what to fetch for a `lawgo` source (search, exact-name match, paging, details)
- `catalogue.py`    the named list of tax laws (`laws: tax-all`, aliases, did-you-mean); any other name is searched
"""
