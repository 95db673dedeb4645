"""One owner for each state machine (issue 21): outside `gateway.runs.lifecycle`, no module
of `gateway` writes a run's state, a run service's status, a work item's state, a slot's
lease or a live score row, and none branches on the database (SQLite or PostgreSQL).
Likewise a worker's lane counters change only through the lane's methods
(`gateway.runs.engine.lanes`).

Creating a run or a run service (`Run(...)`, `RunService(...)`) is left to the modules
that create them, in its first state (`queued`, `pending`): a new row leaves no state, so
there is no guard to own; created in any other state, it skipped the owner's transitions.
A state is seen however it is spelled: an enum member, the enum called on a value, or the
value's string (`"completed"`); a table's state is seen written by `update(T).values(...)`,
`T.insert().values(...)`, rows passed beside the statement (`execute(insert(T), rows)`),
an ORM query's `.update(...)`/`.delete()` and `setattr(row, "state", ...)`. Connecting and
migrating (`gateway.db`, `gateway.migrate`, `gateway.migrations`) are about the database itself.
"""

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import gateway
from gateway.runs.models import ItemState, RunState, ServiceStatus

GATEWAY = Path(gateway.__file__).parent
OWNER = GATEWAY / "runs" / "lifecycle"
DATABASE_ITSELF = {GATEWAY / "db.py", GATEWAY / "migrate.py"} | {
    *(GATEWAY / "migrations").rglob("*.py")
}

STATE_ENUMS = {"RunState", "ServiceStatus", "ItemState"}
STATE_VALUES = {member.value for enum in (RunState, ServiceStatus, ItemState) for member in enum}
STATE_FIELDS = {"state", "status"}
# Tables whose state/status column only the owner writes.
WITH_STATE = {"RUNS", "RUN_SERVICES", "WORK_ITEMS", "Run", "RunService", "WorkItem"}
# Tables every row of which is state: the owner alone writes any column of them.
ALL_STATE = {"SLOTS", "LIVE_SCORES", "LIVE_SCORE_PARTS", "ServiceSlot", "LiveScore"}
ALL_STATE |= {"LiveScorePart"}
# Rows created outside the owner, in their first state only.
CREATED_HERE = {"Run": ("RunState", "QUEUED"), "RunService": ("ServiceStatus", "PENDING")}
ORM_QUERY = {"query"}
RAW_WRITE = re.compile(
    r"\b(UPDATE|INSERT\s+INTO|COPY|DELETE\s+FROM)\s+"
    r"(runs|run_services|work_items|service_slots|live_scores|live_score_parts)\b",
    re.IGNORECASE,
)
DATABASES = {"sqlite", "postgresql", "postgres"}


def _names_a_state(node: ast.AST, *, spelled: bool = False) -> bool:
    """The expression names a member of a state enum (`RunState.RUNNING`) or, `spelled`
    otherwise too, calls one (`ServiceStatus(x)`) or is a state's value (`"completed"`)."""
    for n in ast.walk(node):
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name):
            if n.value.id in STATE_ENUMS:
                return True
        elif spelled and isinstance(n, ast.Call) and isinstance(n.func, ast.Name):
            if n.func.id in STATE_ENUMS:
                return True
        elif spelled and isinstance(n, ast.Constant) and n.value in STATE_VALUES:
            return True
    return False


def _is_first_state(created: str, value: ast.AST) -> bool:
    enum, member = CREATED_HERE[created]
    return (
        isinstance(value, ast.Attribute)
        and isinstance(value.value, ast.Name)
        and (value.value.id, value.attr) == (enum, member)
    )


def _rows_name_a_state(rows: ast.AST) -> bool:
    """Rows passed beside a statement: literal dicts without a state column are all
    right; rows built elsewhere may hold one."""
    dicts = rows.elts if isinstance(rows, (ast.List, ast.Tuple)) else [rows]
    for row in dicts:
        if not isinstance(row, ast.Dict):
            return True
        for key in row.keys:
            if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
                return True
            if key.value in STATE_FIELDS:
                return True
    return False


def _queried_table(node: ast.AST) -> str | None:
    """The model of an ORM query in a chain (`session.query(Run).filter(...)`)."""
    for n in ast.walk(node):
        if (
            isinstance(n, ast.Call)
            and isinstance(n.func, ast.Attribute)
            and n.func.attr in ORM_QUERY
            and n.args
            and isinstance(n.args[0], ast.Name)
        ):
            return n.args[0].id
    return None


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
                    and _names_a_state(node.value, spelled=True)
                ):
                    add(node, f"sets .{target.attr}")
        elif isinstance(node, ast.Call):
            func = node.func
            created = func.id if isinstance(func, ast.Name) and func.id in CREATED_HERE else None
            for keyword in node.keywords:
                if keyword.arg not in STATE_FIELDS:
                    continue
                if created is not None:
                    if not _is_first_state(created, keyword.value):
                        add(node, f"creates a {created} in another state than its first")
                elif _names_a_state(keyword.value):
                    add(node, f"passes {keyword.arg}= a state")
            if (
                isinstance(func, ast.Name)
                and func.id == "setattr"
                and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant)
                and node.args[1].value in STATE_FIELDS
            ):
                add(node, f"sets .{node.args[1].value}")
            if isinstance(func, ast.Attribute) and func.attr in {"execute", "exec_driver_sql"}:
                if len(node.args) >= 2 and isinstance(node.args[0], ast.Call):
                    table = _table_of(node.args[0])
                    if table in WITH_STATE and _rows_name_a_state(node.args[1]):
                        add(node, f"writes {table}'s state")
            if isinstance(func, ast.Attribute) and func.attr in {"update", "delete"}:
                model = _queried_table(func.value)
                if model in ALL_STATE:
                    add(node, f"writes {model}")
                elif model in WITH_STATE and (
                    func.attr == "delete" or not node.args or _rows_name_a_state(node.args[0])
                ):
                    add(node, f"writes {model}'s state")
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
member.status = "passed"
run.state = RunState(row.state)
setattr(item, "state", value)
conn.execute(update(WORK_ITEMS), rows)
conn.execute(insert(RUN_SERVICES), [{"run_id": 1, "status": "ongoing"}])
conn.execute(insert(RUN_SERVICES), [{"run_id": 1, "position": 0}])
session.query(Run).filter(Run.id == 1).update({"state": "completed"})
session.query(WorkItem).filter(WorkItem.id == 1).update({"detail": "x"})
session.query(ServiceSlot).delete()
Run(dataset_id=1, state=RunState.RUNNING)
RunService(run_id=1, status=ServiceStatus.ONGOING)
Run(dataset_id=1, state=RunState.QUEUED)
RunService(run_id=1, status=ServiceStatus.PENDING)
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
            "sets .status",
            "sets .state",
            "sets .state",
            "writes WORK_ITEMS's state",
            "writes RUN_SERVICES's state",
            "writes Run's state",
            "writes ServiceSlot",
            "creates a Run in another state than its first",
            "creates a RunService in another state than its first",
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
    "boosted",
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
