"""Plumbing shared by every service: config, errors, the serve loop, routing."""
