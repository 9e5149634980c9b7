"""Stage 4: label every tracked person of new videos; annotated video, timelines, evaluation."""
