"""Network definitions (torch only): encoders, generators, discriminators. No training logic."""
