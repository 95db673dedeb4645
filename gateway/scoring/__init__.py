"""Metrics of SPEC §6 and the leaderboard."""
