"""The `prepare` stage: documents.jsonl → chunks.jsonl, one concern per module.

clean   Unicode NFC, whitespace, leftover HTML markup
dedup   exact (hash of the normalised text) and near duplicates (MinHash + LSH over Hangul character n-grams)
pii     masks personal data in court decisions and rulings, every text field (never in statutes)
chunk   cuts documents along 조/항/호 or section/paragraph/sentence boundaries to a budget (characters, or tokens ×
        prepare.chars_per_token)
sample  N chunks keeping the source-kind ratio, seeded
process the streaming driver that runs the steps above with bounded memory (used by the stage and the benchmark)
stage   `run_prepare(ctx)`, the stage function the runner calls
"""
