"""Datasets: imported images with their keys and true tags."""
