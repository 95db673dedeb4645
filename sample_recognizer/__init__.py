"""The sample recognizer: the wrapper a team puts around its model."""
