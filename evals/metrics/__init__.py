"""Metric functions, each tested against hand-computed values."""
