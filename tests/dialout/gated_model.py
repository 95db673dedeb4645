"""A team model for the dial-out tests, run by `recoghub-recognizer --backend python`.

It answers `cat:0.9;dog:0.5`. With RECOGHUB_TEST_GATE set to a folder, every request
first leaves a file in `<gate>/arrived/` and then waits until `<gate>/open` exists: the
test sees what is in flight and releases it when it chooses (a gate, not a sleep).
"""

import os
import time
import uuid
from pathlib import Path

ANSWER = "cat:0.9;dog:0.5"


def recognize(image: bytes) -> str:
    gate = os.environ.get("RECOGHUB_TEST_GATE")
    if gate:
        folder = Path(gate)
        (folder / "arrived").mkdir(parents=True, exist_ok=True)
        (folder / "arrived" / uuid.uuid4().hex).write_bytes(image[:16])
        while not (folder / "open").exists():
            time.sleep(0.01)  # the model's own wait; the test polls the arrived files
    return ANSWER
