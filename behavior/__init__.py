"""Per-person behavior recognition: detection, tracking, crops, sequences, model and prediction.

``behavior.compat`` is imported first: it keeps Ultralytics offline and makes torchvision
importable when its compiled ops cannot load.
"""

from behavior import compat as compat  # noqa: I001  (must run before torchvision/ultralytics)

__version__ = "0.1.0"
