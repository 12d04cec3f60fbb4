"""Model stages, one subpackage per command: plan/, train/, evaluate/, export/, serve/.

Modules import torch and transformers inside functions, so importing this package stays cheap.
"""

import logging
import os
import warnings

# bitsandbytes' CPU backend tries, at import, to fetch an optional kernel from the Hub with the `kernels` package and
# logs a warning on every model command when that is absent (always, offline). The fallback it then uses is the
# normal one, so the warning only alarms users.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)

# Deprecation notices that transformers/peft/trl raise about each other's calls (e.g. `is_gradient_checkpointing`)
# say nothing a user can act on; they stay visible with SLM_DEBUG=1.
if os.environ.get("SLM_DEBUG", "") in ("", "0"):
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"(transformers|peft|trl)(\..*)?$")
