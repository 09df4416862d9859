"""Old home of :class:`PairwiseLoopJudge`; it lives in :mod:`diverseevol.judge.loop_judge` now.

Kept so that ``from diverseevol.judge.llm import PairwiseLoopJudge`` keeps working; import it from
:mod:`diverseevol.judge` instead.
"""

from __future__ import annotations

from .loop_judge import PairwiseLoopJudge

__all__ = ["PairwiseLoopJudge"]
