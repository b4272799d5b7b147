"""The scene2img modules a source file imports, read from the source (no import runs): what
the tests of dvc.yaml's code deps and of the one-way dependencies use."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import PROJECT_ROOT

SRC = PROJECT_ROOT / "src"


def module_file(name: str) -> Path | None:
    """The source file of module `name` (a package: its __init__.py); None if not ours."""
    path = SRC.joinpath(*name.split("."))
    for candidate in (path / "__init__.py", path.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def all_modules() -> dict[str, Path]:
    """Every scene2img module, by name."""
    out = {}
    for path in sorted((SRC / "scene2img").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imports(name: str) -> set[str]:
    """The scene2img modules `name` imports anywhere: at the top, or inside a function (a lazy
    import runs too when the function does)."""
    path = module_file(name)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            found |= {base, *(f"{base}.{alias.name}" for alias in node.names)}
    return {m for m in found if m != name and m.split(".")[0] == "scene2img" and module_file(m)}


def code_deps(module: str) -> set[str]:
    """Every source file that runs when `module` is imported and its functions are called,
    relative to the project root."""
    seen: dict[str, Path] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen[name] = module_file(name)
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # its packages' __init__
        todo += imports(name)
    return {str(path.relative_to(PROJECT_ROOT)) for path in seen.values()}
