"""Evaluation: metrics, suites, the batch runner and the A/B arena (see the evals issue)."""
