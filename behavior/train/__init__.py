"""Stage 3: train and cross-validate the classifier on the sequences."""
