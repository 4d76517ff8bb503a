"""Training: datasets, adaptation methods and the adapter registry (see the training issue)."""
