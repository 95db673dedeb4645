"""The layout of `gateway.runs`: the API's side (routes, progress, leaderboards, results,
exports, run creation and state changes) never imports the dispatch worker
(`gateway.runs.engine`), directly or through another module; only what starts workers
does (`gateway.app`, the CLI). States are the enums of `gateway.runs.models`, and the
API's names of them agree with the enums."""

import ast
from pathlib import Path
from typing import get_args

import gateway
from gateway.runs import schemas
from gateway.runs.models import Phase, ServiceStatus

GATEWAY = Path(gateway.__file__).parent
ENGINE = "gateway.runs.engine"
# Packages whose modules serve the API (every module of `gateway.runs` outside the engine).
READ_SIDE_PACKAGES = ("runs", "web", "scoring", "registry", "datasets", "relay", "challenges")


def module_name(path: Path) -> str:
    parts = path.relative_to(GATEWAY.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_path(name: str) -> Path | None:
    base = GATEWAY.parent.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _type_checking_only(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def imports_of(path: Path) -> set[str]:
    """The `gateway` modules a module imports when it runs (function-level imports
    included, `if TYPE_CHECKING:` blocks not), with the packages they are in."""
    found: set[str] = set()
    pending: list[ast.AST] = [ast.parse(path.read_text(), str(path))]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and _type_checking_only(node):
            pending.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if module_path(child) else node.module)
        pending.extend(ast.iter_child_nodes(node))
    named = {name for name in found if name.split(".")[0] == "gateway"}
    return {".".join(n.split(".")[:k]) for n in named for k in range(1, n.count(".") + 2)}


def import_chain(start: str) -> list[str] | None:
    """The chain of imports from `start` to the engine, if there is one."""
    came_from: dict[str, str | None] = {start: None}
    queue = [start]
    while queue:
        name = queue.pop(0)
        if name == ENGINE or name.startswith(ENGINE + "."):
            chain = [name]
            while (before := came_from[chain[-1]]) is not None:
                chain.append(before)
            return chain[::-1]
        path = module_path(name)
        for imported in sorted(imports_of(path)) if path else ():
            if imported not in came_from:
                came_from[imported] = name
                queue.append(imported)
    return None


def read_side_modules() -> list[str]:
    modules = []
    for package in READ_SIDE_PACKAGES:
        for path in sorted((GATEWAY / package).rglob("*.py")):
            name = module_name(path)
            if not name.startswith(ENGINE):
                modules.append(name)
    return modules


def test_the_read_side_never_imports_the_worker() -> None:
    modules = read_side_modules()
    assert {"gateway.runs.routes", "gateway.runs.progress", "gateway.runs.service"} <= set(modules)
    chains = {name: chain for name in modules if (chain := import_chain(name))}
    assert chains == {}, "\n".join(" -> ".join(chain) for chain in chains.values())


def test_the_import_walk_finds_the_engine_where_it_is_imported() -> None:
    """`gateway.app` starts the embedded worker; the CLI imports it inside a function."""
    assert import_chain("gateway.app") == [
        "gateway.app",
        "gateway.runs.engine",
    ]
    chain = import_chain("gateway.cli.worker")
    assert chain is not None and chain[-1].startswith(ENGINE)


def test_the_api_names_the_states_of_the_enums() -> None:
    assert set(get_args(schemas.PhaseName)) == set(Phase)
    assert set(get_args(schemas.ShownStatus)) == {*ServiceStatus, "cancelled"}
