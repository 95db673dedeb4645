"""The team's command-line tool: `recoghub-cli ping | check | recog`."""
