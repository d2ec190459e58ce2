"""Running the cluster on one machine: start, stop, the demo."""
