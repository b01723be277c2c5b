"""Loaded (PYTHONPATH) into the CLI by the secret sweep to make it crash on purpose:
$DECLARE_TEST_CRASH_AFTER=module:function runs that function, then raises an unexpected
exception, so the CLI's last line of defence (exit 3, a crash log) runs with every secret
of the run still in memory."""

from __future__ import annotations

import importlib
import os
from typing import Any


def _install() -> None:
    target = os.environ.pop("DECLARE_TEST_CRASH_AFTER", "")
    if not target:
        return
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    real = getattr(module, attr)

    def crash_after(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)
        raise RuntimeError("injected crash after " + target)

    setattr(module, attr, crash_after)


_install()
