"""Korean tax law as code, shared by every stage: money amounts in Korean notation, citations of statutes, and the
versioned tax calculator. Pure functions; no I/O, no torch."""
