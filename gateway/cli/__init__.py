"""The organizer's command line: `recoghub`."""
