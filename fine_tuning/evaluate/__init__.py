"""`slm evaluate`: answer metrics, multiple-choice benchmarks, the report, the stage."""
