"""Offline quality of a model version: retrieval and classification figures, baselines, report."""
