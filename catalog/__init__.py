"""The product catalog: its on-disk layout, the held-out split and a generated default catalog."""
