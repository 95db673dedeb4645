"""The organizer's dashboard."""
