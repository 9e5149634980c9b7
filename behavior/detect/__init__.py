"""People in frames: the detector and tracker, person crops, pose keypoints."""
