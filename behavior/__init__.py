"""Per-person behavior recognition: detection, tracking, crops, sequences, model and prediction.

Programs call ``behavior.runtime.environment.setup()`` first: it keeps Ultralytics offline and makes
torchvision importable when its compiled ops cannot load. Importing ``behavior`` changes nothing.
"""

__version__ = "0.1.0"
