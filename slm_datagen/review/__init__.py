"""`slm review`: people decide on the pairs build held for review (or any pair), and `slm build` follows them.

decisions.py the append-only log; apply.py what build does with it; progress.py the counts the page, `slm data stats`
and the card share; state.py the run as the page sees it; app.py the FastAPI app; cli.py the command; static/ the page.
"""
