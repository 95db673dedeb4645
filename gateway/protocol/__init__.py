"""The recognizer protocol, version 1: what the hub, the sample recognizer and the CLI share."""
