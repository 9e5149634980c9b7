"""Project tools users do not import: the demo clip generator and tracking metrics."""
