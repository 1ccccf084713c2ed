"""Fixtures for the Android demo's host-side checks: compile the app's plain-Java logic once per session."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ANDROID_DEMO = Path(__file__).resolve().parents[2] / "android_demo"
HOST_TESTS = ANDROID_DEMO / "run_host_tests.sh"
JUNIT_JAR = Path(os.environ.get("JUNIT_JAR", "/usr/share/java/junit4.jar"))
HAMCREST_JAR = Path(os.environ.get("HAMCREST_JAR", "/usr/share/java/hamcrest-core.jar"))
JSON_JAR = Path(os.environ.get("JSON_JAR", "/usr/share/java/com.android.json.jar"))  # Android's org.json
INSTALL_HINT = "apt-get install -y openjdk-17-jdk-headless junit4 libandroid-json-java"


@dataclass
class JavaBuild:
    returncode: int   # of run_host_tests.sh: 0 = compiled and every JUnit test passed
    output: str       # its stdout + stderr
    main_classes: Path
    test_classes: Path

    def classpath(self) -> str:
        return os.pathsep.join(map(str, (self.main_classes, self.test_classes, JSON_JAR, JUNIT_JAR, HAMCREST_JAR)))

    def host_tool(self, *args: str | os.PathLike) -> subprocess.CompletedProcess:
        """Run org.burnedge.demo.logic.HostTool (see its javadoc); fails the test on a non-zero exit."""
        if not (self.main_classes / "org/burnedge/demo/logic/ModelMetadata.class").is_file():
            pytest.fail(f"the Java logic did not compile:\n{self.output[-3000:]}")
        r = subprocess.run(["java", "-cp", self.classpath(), "org.burnedge.demo.logic.HostTool", *map(str, args)],
                           capture_output=True, text=True, timeout=120)
        if r.returncode:
            pytest.fail(f"HostTool {args[0]} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
        return r


def java_missing() -> str | None:
    """Why the JVM checks cannot run here, or None."""
    for tool in ("javac", "java"):
        if shutil.which(tool) is None:
            return f"{tool} not found ({INSTALL_HINT})"
    for jar in (JUNIT_JAR, HAMCREST_JAR, JSON_JAR):
        if not jar.is_file():
            return f"{jar} not found ({INSTALL_HINT}, or set JUNIT_JAR/HAMCREST_JAR/JSON_JAR)"
    return None


@pytest.fixture(scope="session")
def java_build(tmp_path_factory) -> JavaBuild:
    """Compile android_demo/logic and run its JUnit tests once (run_host_tests.sh); skip if no JDK/JUnit."""
    reason = java_missing()
    if reason:
        pytest.skip(reason)
    build = tmp_path_factory.mktemp("android_host")
    r = subprocess.run(["bash", str(HOST_TESTS), "--build-dir", str(build)], capture_output=True, text=True,
                       timeout=600)
    return JavaBuild(r.returncode, r.stdout + r.stderr, build / "main", build / "test")
