"""Offline multiple-choice benchmarks (MMLU, HellaSwag, ARC, BoolQ, TruthfulQA MC1,
BIG-bench, BIG-Bench Hard) scored by log-likelihood, as lm-evaluation-harness scores them.

``tasks`` holds the task families (YAML in ``tasks/``), ``scoring`` the batched
log-likelihoods, ``runner`` acc / acc_norm with intervals, ``models`` the model loading.
"""
