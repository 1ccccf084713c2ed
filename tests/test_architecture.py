"""The one-way import rule, read from the source (every import statement, those inside functions included).

    common   -> nothing of ours
    runtimes -> common                  (what a user copies to a Raspberry Pi: no training code)
    train    -> common
    export   -> common, train, runtimes (export reads train's model and runtimes' format contract)
    pipeline -> anything                (the whole-chain orchestration sits on top)
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OURS = ("common", "runtimes", "train", "export", "pipeline")
ALLOWED = {
    "common": set(),
    "runtimes": {"common"},
    "train": {"common"},
    "export": {"common", "train", "runtimes"},
    "pipeline": set(OURS),
}


def imported_packages(source: str, module: str) -> list[tuple[int, str]]:
    """(line, top-level package) for every import in ``source``; ``module`` ("export.audit") resolves
    relative imports."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name.split(".")[0]) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # from . import x / from ..pkg import y
                base = module.split(".")[:-node.level] or [""]
                out.append((node.lineno, base[0] or (node.module or "").split(".")[0]))
            elif node.module:
                out.append((node.lineno, node.module.split(".")[0]))
    return out


def violations(root: Path = ROOT) -> list[str]:
    """``file:line: <package> imports <package>`` for every import that breaks the rule."""
    bad = []
    for pkg in OURS:
        for path in sorted((root / pkg).rglob("*.py")):
            rel = path.relative_to(root)
            module = ".".join(rel.with_suffix("").parts)
            for line, top in imported_packages(path.read_text(encoding="utf-8"), module):
                if top in OURS and top != pkg and top not in ALLOWED[pkg]:
                    bad.append(f"{rel}:{line}: {pkg} imports {top} (allowed: {sorted(ALLOWED[pkg]) or 'nothing'})")
    return bad


def test_every_package_exists_and_has_python_files():
    for pkg in OURS:
        assert list((ROOT / pkg).rglob("*.py")), f"{pkg}/ has no Python files"


def test_imports_follow_the_one_way_rule():
    bad = violations()
    assert not bad, "imports against the one-way rule:\n" + "\n".join(bad)


def test_the_checker_names_file_and_line_of_a_bad_import(tmp_path):
    """The rule test can fail: a runtimes module importing train inside a function is reported with its line."""
    for pkg in OURS:
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "__init__.py").write_text("")
    (tmp_path / "runtimes" / "bad.py").write_text("import numpy\n\n\ndef f():\n    from train.errors import X\n")
    (tmp_path / "train" / "rel.py").write_text("from ..export import y\nfrom . import sibling\n")
    (tmp_path / "export" / "ok.py").write_text("import runtimes.format\nfrom train.models import m\n")
    (tmp_path / "common" / "bad.py").write_text("import export.audit as a\n")
    assert violations(tmp_path) == [
        "common/bad.py:1: common imports export (allowed: nothing)",
        "runtimes/bad.py:5: runtimes imports train (allowed: ['common'])",
        "train/rel.py:1: train imports export (allowed: ['common'])",
    ]
