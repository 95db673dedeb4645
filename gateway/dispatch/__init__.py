"""Sending requests to recognizers: signing, retries, failover, outcomes, latency."""
