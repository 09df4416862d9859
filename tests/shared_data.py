"""Where the real public test data lives: ``shared/data`` beside the checkout, or $DIVERSEEVOL_SHARED_DATA."""

from __future__ import annotations

import os
from pathlib import Path


def shared_data_dir() -> Path:
    env = os.environ.get("DIVERSEEVOL_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"
