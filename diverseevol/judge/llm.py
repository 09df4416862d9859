"""Deprecated old home of :class:`PairwiseLoopJudge`; it lives in :mod:`diverseevol.judge.loop_judge`.

Import it from :mod:`diverseevol.judge`. Importing this module warns (:class:`DeprecationWarning`);
it will be removed in the next release.
"""

from __future__ import annotations

from .._deprecation import warn_old_home
from .loop_judge import PairwiseLoopJudge

__all__ = ["PairwiseLoopJudge"]

warn_old_home("diverseevol.judge.llm", "diverseevol.judge", "PairwiseLoopJudge")
