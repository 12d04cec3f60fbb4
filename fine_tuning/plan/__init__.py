"""`slm plan`: the model registry, the memory/time/cost model and its CLI."""
