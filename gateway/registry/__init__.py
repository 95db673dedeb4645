"""Providers (teams), their services and the services' endpoint instances."""
