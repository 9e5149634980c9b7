"""Training data: sequence datasets, recording-aware splits, and the bags of multiple-instance learning."""
