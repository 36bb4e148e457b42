"""Plotly figures for results."""
