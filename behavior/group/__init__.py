"""Stage 2: cut each person's track into fixed-length windows, labeled and split by recording."""
