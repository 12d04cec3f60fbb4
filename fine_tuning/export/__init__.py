"""`slm export`: merge the adapter, model card, Ollama Modelfile, GGUF, the stage."""
