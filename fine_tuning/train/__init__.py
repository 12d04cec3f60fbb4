"""`slm train`: model loading (LoRA/QLoRA), chat templates, preflight, callbacks, tiny local models, the stage."""
