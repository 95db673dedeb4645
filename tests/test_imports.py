"""The import graph of `gateway`: no circle, whichever way an import is written (at the
top, under `if TYPE_CHECKING:` or inside a function), and the dispatch tree split by
what it talks to: each protocol adapter in a module of its own, HTTP endpoints and
dial-out connections each sent to by a module that knows nothing of the other."""

import ast
from pathlib import Path

import gateway
from gateway.dispatch.protocols.options import PROTOCOLS
from gateway.dispatch.protocols.recoghub_v1 import Adapter

GATEWAY = Path(gateway.__file__).parent


def _name(path: Path) -> str:
    parts = path.relative_to(GATEWAY.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(path): path for path in sorted(GATEWAY.rglob("*.py"))}


def _module_of(dotted: str) -> str | None:
    """The longest prefix of `dotted` that is a gateway module (`from a.b import c`
    names module a.b.c when there is one, else a.b)."""
    while dotted and dotted not in MODULES:
        dotted = dotted.rpartition(".")[0]
    return dotted or None


def imports_of(name: str) -> set[str]:
    """Every gateway module `name` imports, wherever the import stands in it."""
    found: set[str] = set()
    package = name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(MODULES[name].read_text(), str(MODULES[name]))):
        if isinstance(node, ast.Import):
            dotted = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}".rstrip(".")
            dotted = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for one in dotted:
            module = _module_of(one) if one.startswith("gateway.") else None
            if module is not None and module != name:
                found.add(module)
    return found


def import_cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """The strongly connected parts of `graph` with more than one module (Tarjan's
    algorithm, iterative), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            if child < len(graph[node]):
                work.append((node, child + 1))
                nxt = graph[node][child]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                part = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    part.append(top)
                    if top == node:
                        break
                if len(part) > 1:
                    cycles.append(sorted(part))
    return cycles


def test_the_finder_reads_imports_and_finds_circles() -> None:
    assert "gateway.config" in imports_of("gateway.state")  # from gateway.config import X
    # A function-level import counts: the client loads its transports only when chosen.
    assert "gateway.dispatch.wreq_client" in imports_of("gateway.dispatch.client")
    graph = {"a": ["b"], "b": ["c"], "c": ["a", "d"], "d": [], "e": ["e"]}
    assert import_cycles(graph) == [["a", "b", "c"]]


def test_no_gateway_module_imports_itself_through_others() -> None:
    graph = {name: sorted(imports_of(name)) for name in MODULES}
    assert import_cycles(graph) == []


def _adapter_classes() -> list[type[Adapter]]:
    found: list[type[Adapter]] = []
    pending: list[type[Adapter]] = [Adapter]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def test_each_protocol_adapter_lives_in_a_module_of_its_own() -> None:
    # Imported by the registry, the relay and the engine alike: every adapter is loaded.
    import gateway.dispatch.protocols  # noqa: F401

    # An adapter of a protocol names it; a shared base (the JSON protocols') does not.
    protocols = [cls for cls in _adapter_classes() if "name" in vars(cls)]
    modules = [cls.__module__ for cls in protocols]
    assert {cls.name for cls in protocols} == set(PROTOCOLS)
    assert len(set(modules)) == len(modules), dict(zip(modules, protocols, strict=True))


def test_endpoints_and_connections_are_sent_to_by_modules_that_know_only_their_own() -> None:
    endpoints = imports_of("gateway.dispatch.endpoints")
    connections = imports_of("gateway.dispatch.connections")
    assert not any(name.startswith("gateway.dialout") for name in endpoints), endpoints
    assert "gateway.dispatch.client" not in connections, connections
    assert "gateway.dispatch.endpoints" not in connections
    assert "gateway.dispatch.connections" not in endpoints
