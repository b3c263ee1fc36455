"""Training: the loop, a captures run's settings, device selection."""
