"""The packages of qingyin import downward only (ARCHITECTURE.md, "Rules of the house"):

    options, arrays → text → voices → families → style → runtime → evaluate → server → cli

Every `import qingyin.X` / `from qingyin.X import ...` / `from qingyin import X` of every module counts, at module
level or inside a function (a lazy import is still a dependency). A package may import itself. The root package
`qingyin` (its __version__ and lazy API) may be imported from anywhere: it imports nothing at module level.
"""

from __future__ import annotations

import ast
from pathlib import Path

import qingyin

ROOT = Path(qingyin.__file__).parent
LAYERS = {"options": 0, "arrays": 0, "text": 1, "voices": 2, "families": 3, "style": 4, "runtime": 5, "evaluate": 6,
          "batch": 6, "compress": 6, "server": 7, "cli": 8}
# (importing module, imported package) -> why the upward import is needed. Keep this empty when you can.
EXCEPTIONS: dict[tuple[str, str], str] = {
    ("qingyin.style.reference", "evaluate"): "a reference recording is measured with the evaluation's own analysis "
    "(signal_metrics: WORLD F0, speech/pause segmentation, syllable nuclei), so that the voices' profiles and the "
    "reference are measured alike; imported lazily, inside the function",
}


def _package(module: str) -> str | None:
    """The layer of a dotted module name ("qingyin.families.base" -> "families"); None for the root package."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _modules() -> dict[str, Path]:
    modules = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _imports(path: Path, module: str = "") -> list[tuple[int, str]]:
    """(line, imported qingyin module) of every import statement in the file of `module` (relative ones resolved)."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.split(".")[0] == "qingyin"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "qingyin":  # from qingyin import families, __version__
                found += [(node.lineno, f"qingyin.{alias.name}") for alias in node.names
                          if (ROOT / alias.name).is_dir() or (ROOT / f"{alias.name}.py").is_file()]
            elif node.module.split(".")[0] == "qingyin":
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            base = package[: len(package) - node.level + 1]
            found.append((node.lineno, ".".join([*base, *([node.module] if node.module else [])])))
    return found


def test_every_package_has_a_layer():
    packages = {_package(name) for name in _modules()} - {None}
    assert packages <= set(LAYERS), f"give these packages a layer: {sorted(packages - set(LAYERS))}"


def test_packages_import_downward_only():
    upward = []
    for name, path in _modules().items():
        package = _package(name)
        if package is None:
            continue
        for line, imported in _imports(path, name):
            target = _package(imported)
            if target is None or target == package or (name, target) in EXCEPTIONS:
                continue
            if LAYERS[target] > LAYERS[package]:
                upward.append(f"{path.relative_to(ROOT.parent)}:{line}: {package} imports {imported}")
    assert not upward, "imports against the layers:\n" + "\n".join(upward)


def test_root_package_imports_nothing_at_module_level():
    tree = ast.parse((ROOT / "__init__.py").read_text(encoding="utf-8"))
    eager = [node.lineno for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)
             and "qingyin" in ((node.module or "") if isinstance(node, ast.ImportFrom)
                               else " ".join(a.name for a in node.names))]
    assert not eager, f"qingyin/__init__.py imports qingyin modules at module level (lines {eager})"


def test_the_checker_sees_lazy_and_from_package_imports(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("from .g2p import x\ndef f():\n    from qingyin import families\n    import qingyin.server.app\n")
    assert [module for _, module in _imports(source, "qingyin.text.m")] == [
        "qingyin.text.g2p", "qingyin.families", "qingyin.server.app"]
