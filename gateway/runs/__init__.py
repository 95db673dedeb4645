"""Runs: dry runs and evaluations of every service over a dataset."""
