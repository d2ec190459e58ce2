"""Offline quality of a model version's variants: retrieval and top-1 figures, baselines, report."""
