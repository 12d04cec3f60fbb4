"""`slm ask` / `slm chat` / `slm serve`: generation, the interactive commands and the OpenAI-compatible server."""
