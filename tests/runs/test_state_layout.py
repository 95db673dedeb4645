"""One owner for each state machine (issue 21): outside `gateway.runs.lifecycle`, no module
of `gateway` writes a run's state, a run service's status, a work item's state, a slot's
lease or a live score row, and none branches on the database (SQLite or PostgreSQL).
Likewise a worker's lane counters change only through the lane's methods
(`gateway.runs.engine.lanes`).

Creating a run or a run service (`Run(...)`, `RunService(...)`) is left to the modules
that create them: a new row leaves no state, so there is no guard to own. Connecting and
migrating (`gateway.db`, `gateway.migrate`, `gateway.migrations`) are about the database itself.
"""

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import gateway

GATEWAY = Path(gateway.__file__).parent
OWNER = GATEWAY / "runs" / "lifecycle"
DATABASE_ITSELF = {GATEWAY / "db.py", GATEWAY / "migrate.py"} | {
    *(GATEWAY / "migrations").rglob("*.py")
}

STATE_ENUMS = {"RunState", "ServiceStatus", "ItemState"}
STATE_FIELDS = {"state", "status"}
# Tables whose state/status column only the owner writes.
WITH_STATE = {"RUNS", "RUN_SERVICES", "WORK_ITEMS", "Run", "RunService", "WorkItem"}
# Tables every row of which is state: the owner alone writes any column of them.
ALL_STATE = {"SLOTS", "LIVE_SCORES", "LIVE_SCORE_PARTS", "ServiceSlot", "LiveScore"}
ALL_STATE |= {"LiveScorePart"}
CREATED_HERE = {"Run", "RunService"}
RAW_WRITE = re.compile(
    r"\b(UPDATE|INSERT\s+INTO|COPY|DELETE\s+FROM)\s+"
    r"(runs|run_services|work_items|service_slots|live_scores|live_score_parts)\b",
    re.IGNORECASE,
)
DATABASES = {"sqlite", "postgresql", "postgres"}


def _names_a_state(node: ast.AST) -> bool:
    """The expression names a member of a state enum (`RunState.RUNNING`, ...)."""
    return any(
        isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in STATE_ENUMS
        for n in ast.walk(node)
    )


def _table_of(call: ast.Call) -> str | None:
    """The table written by `update(T)`, `insert(T)`, `delete(T)`, `T.insert()`, ..."""
    func = call.func
    if isinstance(func, ast.Name) and func.id in {"update", "insert", "delete"} and call.args:
        target = call.args[0]
        if isinstance(target, ast.Name):
            return target.id
    if (
        isinstance(func, ast.Attribute)
        and func.attr in {"update", "insert", "delete"}
        and isinstance(func.value, ast.Name)
    ):
        return func.value.id
    return None


def _written_fields(chain: ast.AST) -> set[str] | None:
    """The columns the `.values(...)` calls of a statement name; None if some are not
    named (a dict built elsewhere, `**` unpacking)."""
    fields: set[str] = set()
    for node in ast.walk(chain):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "values"
        ):
            continue
        for keyword in node.keywords:
            if keyword.arg is None:
                return None
            fields.add(keyword.arg)
        for arg in node.args:
            if not isinstance(arg, ast.Dict):
                return None
            for key in arg.keys:
                if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
                    return None
                fields.add(key.value)
    return fields


def _statements(tree: ast.AST) -> Iterator[tuple[ast.AST, ast.Call]]:
    """Each outermost expression with the table-writing call inside it."""
    parents: dict[ast.AST, ast.AST] = {}
    for parent in ast.walk(tree):
        for child in ast.iter_child_nodes(parent):
            parents[child] = parent
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _table_of(node):
            top: ast.AST = node
            while isinstance(parents.get(top), (ast.Attribute, ast.Call)):
                top = parents[top]
            yield top, node


def _is_dialect(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr in {"dialect", "paramstyle"}) or (
        isinstance(node, ast.Constant) and node.value in DATABASES
    )


def violations(path: Path, source: str) -> list[str]:
    """What in one module writes a state the owner keeps, or branches on the database."""
    tree = ast.parse(source, str(path))
    found: list[str] = []

    def add(node: ast.AST, what: str) -> None:
        found.append(f"{path.relative_to(GATEWAY.parent)}:{getattr(node, 'lineno', '?')}: {what}")

    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if (
                    isinstance(target, ast.Attribute)
                    and target.attr in STATE_FIELDS
                    and node.value is not None
                    and _names_a_state(node.value)
                ):
                    add(node, f"sets .{target.attr}")
        elif isinstance(node, ast.Call):
            creates = isinstance(node.func, ast.Name) and node.func.id in CREATED_HERE
            for keyword in node.keywords:
                if keyword.arg in STATE_FIELDS and _names_a_state(keyword.value) and not creates:
                    add(node, f"passes {keyword.arg}= a state")
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if (
                    isinstance(key, ast.Constant)
                    and key.value in STATE_FIELDS
                    and _names_a_state(value)
                ):
                    add(node, f'a row with "{key.value}": a state')
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if RAW_WRITE.search(node.value):
                add(node, "writes a state table in SQL text")
        elif isinstance(node, ast.Compare):
            if path not in DATABASE_ITSELF and any(
                _is_dialect(n) for side in (node.left, *node.comparators) for n in ast.walk(side)
            ):
                add(node, "branches on the database")
        elif isinstance(node, ast.Subscript):
            if path not in DATABASE_ITSELF and any(
                isinstance(n, ast.Attribute) and n.attr == "paramstyle" for n in ast.walk(node)
            ):
                add(node, "branches on the database")
    for statement, call in _statements(tree):
        table = _table_of(call)
        if table in ALL_STATE:
            add(call, f"writes {table}")
        elif table in WITH_STATE:
            fields = _written_fields(statement)
            if fields is None or fields & STATE_FIELDS:
                add(call, f"writes {table}'s state")
    return found


def outside_modules() -> list[Path]:
    return [p for p in sorted(GATEWAY.rglob("*.py")) if OWNER not in p.parents]


def test_only_the_lifecycle_package_writes_states_or_branches_on_the_database() -> None:
    found = [v for path in outside_modules() for v in violations(path, path.read_text())]
    assert found == [], "\n".join(found)


def test_the_owner_itself_is_seen_writing() -> None:
    """The check finds what it looks for: in the package, every kind of write is there."""
    found = "\n".join(
        v for path in sorted(OWNER.glob("*.py")) for v in violations(path, path.read_text())
    )
    for what in (
        "writes RUNS's state",
        "writes RUN_SERVICES's state",
        "writes WORK_ITEMS's state",
        "writes SLOTS",
        "writes LIVE_SCORES",
        "writes LIVE_SCORE_PARTS",
        "sets .state",
        "writes a state table in SQL text",
        "branches on the database",
    ):
        assert what in found, what


def test_a_write_outside_the_package_is_found() -> None:
    bad = GATEWAY / "runs" / "engine" / "example.py"
    source = """
run.state = RunState.COMPLETED
conn.execute(update(RUN_SERVICES).where(x).values(status=ServiceStatus.DOWN))
conn.execute(update(RUN_SERVICES).where(x).values(verdict.values()))
conn.execute(update(RUN_SERVICES).where(x).values(resent=RUN_SERVICES.c.resent + 1))
conn.execute(update(SLOTS).where(x).values(lease_owner=None))
conn.execute(LIVE_SCORES.insert(), rows)
conn.exec_driver_sql("UPDATE work_items SET state = 'done'")
if conn.dialect.name == "postgresql":
    pass
"""
    found = violations(bad, source)
    assert sorted(line.split(": ", 1)[1] for line in found) == sorted(
        [
            "sets .state",
            "passes status= a state",
            "writes a state table in SQL text",
            "branches on the database",
            "writes RUN_SERVICES's state",
            "writes RUN_SERVICES's state",
            "writes SLOTS",
            "writes LIVE_SCORES",
        ]
    )


# A lane's counters and flags (gateway/runs/engine/lanes.py): changed by its methods.
LANE_FIELDS = {
    "buffered",
    "in_flight",
    "unflushed",
    "retiring",
    "completed",
    "dry",
    "stopping",
    "ongoing",
    "starved",
    "boost",
    "scored",
}
LANES = GATEWAY / "runs" / "engine" / "lanes.py"


def lane_writes(path: Path, source: str) -> list[str]:
    """Assignments to a lane's counters on another object than `self`."""
    found = []
    for node in ast.walk(ast.parse(source, str(path))):
        if isinstance(node, (ast.Assign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if (
                    isinstance(target, ast.Attribute)
                    and target.attr in LANE_FIELDS
                    and not (isinstance(target.value, ast.Name) and target.value.id == "self")
                ):
                    found.append(f"{path.relative_to(GATEWAY.parent)}:{node.lineno}: {target.attr}")
    return found


def test_only_the_lane_changes_its_counters() -> None:
    paths = [p for p in sorted(GATEWAY.rglob("*.py")) if p != LANES]
    found = [v for path in paths for v in lane_writes(path, path.read_text())]
    assert found == [], "\n".join(found)
    assert lane_writes(LANES, "lane.buffered += 1\nself.buffered = 0\n") == [
        "gateway/runs/engine/lanes.py:1: buffered"
    ]
