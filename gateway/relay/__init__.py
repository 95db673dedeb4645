"""Relaying one recognition request, and checking a service, for teams debugging."""
