"""Korean tax law as code, shared by every stage. Pure functions; no I/O, no torch.

* `amounts` — money amounts in Korean notation; `citations` — citations of statutes.
* The calculator: `tables` (rate tables as dated data, each with its article and 시행일), `inputs` (the enums of its
  inputs), `computation` (TaxComputation, bracket arithmetic), one module per tax (`gift`, `inheritance`, `income`,
  `capital_gains`), `verdict` (compute / check_calculation for a teacher's payload) and `answer_amounts` (the amounts
  a free-text answer states).
"""
