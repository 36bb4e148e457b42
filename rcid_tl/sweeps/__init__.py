"""Sweeps: configs that run an intervention over a task and results that save themselves."""
