"""Stage 1: detect and track the people of each labeled video and save their crops."""
