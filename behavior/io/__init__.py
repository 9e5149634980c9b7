"""What the stages share on disk: files, videos, weights, the frames folder, the sequences file, checkpoints."""
