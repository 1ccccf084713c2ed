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


def readme_layout_paths(readme: str) -> list[str]:
    """Paths named in the first column of README's layout table. A cell ``a/b.py`, `c.py`` names a/b.py and
    a/c.py (later names are relative to the first one's folder)."""
    section = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    paths = []
    for row in section.splitlines():
        if not row.startswith("| `"):
            continue
        names = [c.strip().strip("`") for c in row.split("|")[1].split(",")]
        first = names[0].rstrip("/")
        folder = first.rsplit("/", 1)[0] + "/" if "/" in first else ""
        paths += [names[0]] + [n if "/" in n else folder + n for n in names[1:]]
    return paths


def test_readme_layout_table_matches_the_tree():
    paths = readme_layout_paths((ROOT / "README.md").read_text(encoding="utf-8"))
    missing = [p for p in paths if not (ROOT / p).exists()]
    assert not missing, f"README's layout table names paths that do not exist: {missing}"
    listed_dirs = {p.split("/")[0] for p in paths}
    assert set(OURS) <= listed_dirs, f"packages missing from README's layout table: {set(OURS) - listed_dirs}"
    modules = sorted(str(p.relative_to(ROOT)) for pkg in OURS for p in (ROOT / pkg).rglob("*.py")
                     if p.name not in ("__init__.py", "__main__.py"))
    unlisted = [m for m in modules if m not in paths and not any(m.startswith(p) for p in paths if p.endswith("/"))]
    assert not unlisted, f"modules missing from README's layout table: {unlisted}"


def test_runtimes_runs_without_train_and_export(tmp_path):
    """Every runtimes module imports, and the bench CLI answers, with train/export/pipeline unimportable
    (what a Raspberry Pi with only runtimes/ and common/ copied over sees)."""
    import subprocess
    import sys

    modules = sorted(".".join(p.relative_to(ROOT).with_suffix("").parts) for p in (ROOT / "runtimes").glob("*.py"))
    code = f"""
import importlib, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("train", "export", "pipeline"):
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
for m in {modules!r}:
    importlib.import_module(m.removesuffix(".__init__"))
from runtimes.bench import main
sys.exit(main(["--help"]))
"""
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "usage" in r.stdout, r.stdout[:200]


def test_every_package_is_installed_by_pyproject():
    """``pip install .`` ships each of the five packages (setuptools' packages.find include list)."""
    import re

    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    section = text.split("[tool.setuptools.packages.find]", 1)[1].split("\n[", 1)[0]
    include = re.findall(r'"([^"]+)"', re.search(r"include\s*=\s*\[([^\]]*)\]", section).group(1))
    assert all(f"{pkg}*" in include for pkg in OURS), include


# ------------------------------------------------------------------ one way into every runtime

SESSION_MODULE = "runtimes/session.py"
NATIVE_MODULES = ("onnxruntime", "larq_compute_engine.tflite", "ai_edge_litert", "tflite_runtime")
NATIVE_ATTRS = ("InferenceSession", "Interpreter")  # ort.InferenceSession, tf.lite.Interpreter, ...
SCANNED = OURS + ("tests", "benchmarks")
# Scripts that run inside the emulated aarch64 Python (runtimes.arm's float twin), where burn-edge itself is not
# importable: they must open the aarch64 tflite_runtime wheel directly.
GUEST_SCRIPTS = {"runtimes/arm_lane/float_twin_guest.py"}


def native_runtime_uses(root: Path = ROOT) -> list[str]:
    """``file:line: what`` for every import of a native runtime module and every ``*.InferenceSession`` /
    ``*.Interpreter`` outside :mod:`runtimes.session` (``runtimes.isolate``'s child goes through it too)."""
    bad = []
    for top in SCANNED:
        for path in sorted((root / top).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            if rel == SESSION_MODULE or rel in GUEST_SCRIPTS:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    names = [node.module]
                for n in names:
                    if any(n == m or n.startswith(m + ".") for m in NATIVE_MODULES):
                        bad.append(f"{rel}:{node.lineno}: imports {n}")
                if isinstance(node, ast.Attribute) and node.attr in NATIVE_ATTRS:
                    bad.append(f"{rel}:{node.lineno}: uses .{node.attr}")
    return bad


def test_every_runtime_call_goes_through_the_session_api():
    bad = native_runtime_uses()
    assert not bad, "open models with runtimes.session.open_session instead:\n" + "\n".join(bad)


def test_the_session_checker_can_fail(tmp_path):
    for top in SCANNED:
        (tmp_path / top).mkdir()
    (tmp_path / "runtimes" / "session.py").write_text("import onnxruntime\n")  # the one allowed place
    (tmp_path / "export" / "bad.py").write_text("def f(tf):\n    import onnxruntime as ort\n"
                                                "    return tf.lite.Interpreter(model_path='m')\n")
    (tmp_path / "tests" / "t.py").write_text("from larq_compute_engine.tflite.python.interpreter import I\n")
    assert native_runtime_uses(tmp_path) == [
        "export/bad.py:2: imports onnxruntime",
        "export/bad.py:3: uses .Interpreter",
        "tests/t.py:1: imports larq_compute_engine.tflite.python.interpreter",
    ]
