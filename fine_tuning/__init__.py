"""Model stages, one subpackage per command: plan/, train/, evaluate/, export/, serve/.

Modules import torch and transformers inside functions, so importing this package stays cheap.

Warnings: only the messages in `HIDDEN_WARNINGS` are hidden, each understood and harmless (the reason beside it);
every other warning of transformers, peft, trl or torch reaches the user. SLM_DEBUG=1 shows these too.
"""

import logging
import os
import warnings

# bitsandbytes' CPU backend tries, at import, to fetch an optional kernel from the Hub with the `kernels` package and
# logs a warning on every model command when that is absent (always, offline). The fallback it then uses is the
# normal one, so the warning only alarms users.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)

# (category, message regex matched at the start of the message, module regex, why it is harmless)
HIDDEN_WARNINGS: tuple[tuple[type[Warning], str, str, str], ...] = (
    (
        FutureWarning,
        r"`is_gradient_checkpointing` is deprecated",
        r"transformers\.modeling_utils",
        "peft's PeftModel and TRL's trainer read the old property name on every model; transformers 5 keeps it as "
        "an alias of is_activation_checkpointing, so the value they get is the right one",
    ),
    (
        FutureWarning,
        r"`gradient_checkpointing_(enable|disable)` is deprecated",
        r"transformers\.modeling_utils",
        "TRL's checkpointing helpers (trl.models.utils, around generation and evaluation) call the old names, "
        "aliases of activation_checkpointing_enable/disable with the same arguments (slm calls the new ones)",
    ),
)


def install_warning_filters() -> None:
    """Hide exactly the messages of HIDDEN_WARNINGS (nothing else) unless SLM_DEBUG is set."""
    if os.environ.get("SLM_DEBUG", "") not in ("", "0"):
        return
    for category, message, module, _why in HIDDEN_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
    # kernels (pulled in by bitsandbytes) logs, in offline mode, that it skips a Hub trust check for a kernel it
    # already has in the cache: offline is what the tests and a pre-downloaded pod ask for.
    logging.getLogger("kernels._internals.hf_hub").setLevel(logging.ERROR)


install_warning_filters()
