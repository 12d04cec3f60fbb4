"""Model stages: registry, memory planner, training, evaluation, export, ask/chat/serve.

Modules import torch and transformers inside functions, so importing this package stays cheap.
"""

import logging

# bitsandbytes' CPU backend tries, at import, to fetch an optional kernel from the Hub with the `kernels` package and
# logs a warning on every model command when that is absent (always, offline). The fallback it then uses is the
# normal one, so the warning only alarms users.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
