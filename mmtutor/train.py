"""Training runs (kept importable as ``mmtutor.train``; the code lives in :mod:`mmtutor.runs`).

Defined in the chapter on the sentiment project. ``from mmtutor.train import train_run,
load_run`` keeps working; new code may import from :mod:`mmtutor.runs` directly.
"""

from mmtutor.runs import *  # noqa: F401,F403
from mmtutor.runs import __all__  # noqa: F401
from mmtutor.runs.train import _has_tensorboard  # noqa: F401  (tests patch it)
