"""The Android demo's JVM unit tests (android_demo/logic, JUnit 4) must pass on the host."""

from __future__ import annotations

import re

from tests.android.conftest import ANDROID_DEMO


def test_jvm_unit_tests_pass(java_build):
    assert java_build.returncode == 0, f"android_demo/run_host_tests.sh failed:\n{java_build.output[-6000:]}"
    m = re.search(r"OK \((\d+) tests\)", java_build.output)
    assert m and int(m.group(1)) >= 20, java_build.output[-2000:]


def test_logic_module_has_no_android_imports():
    """The shared logic must stay plain Java (the glue under app/ is the only Android code)."""
    offenders = [str(p.relative_to(ANDROID_DEMO)) for p in (ANDROID_DEMO / "logic").rglob("*.java")
                 if re.search(r"^\s*import\s+androidx?\.", p.read_text(), re.M)]
    assert offenders == []


def test_every_junit_class_is_run(java_build):
    """run_host_tests.sh discovers *Test.java itself; check it ran all of them."""
    names = sorted(p.stem for p in (ANDROID_DEMO / "logic/src/test").rglob("*Test.java"))
    m = re.search(r"running (\d+) JUnit test classes", java_build.output)
    assert m and int(m.group(1)) == len(names) > 0
