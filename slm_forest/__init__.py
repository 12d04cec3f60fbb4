"""SLM Forest: the shared spine of the `slm` CLI (config, records, manifests, the stage runner).

This package never imports torch; the training commands import `fine_tuning` lazily.
"""

__version__ = "0.1.0"
