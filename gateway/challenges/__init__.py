"""Challenges and phases (SPEC §12): models, service, routes, schemas."""
