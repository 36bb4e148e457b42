"""The RCID study (seed 000 experiments 1-5): analyses over trained students, from saved results to figures."""
