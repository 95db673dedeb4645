"""`python -m sample_recognizer`: the same as `recoghub-recognizer`."""

from sample_recognizer.main import main

main()
