"""The RCID study: five experiments (`experiments.Experiment`: circuit preservation, method comparison, consistency vs
robustness, component retention, information purity) over trained students, from saved results to figures."""
