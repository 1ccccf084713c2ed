"""The demo app as a signed debug APK, built without Gradle (android_demo/build_apk.py) and checked as a store would.

The build compiles the app against the real API 23 android.jar (Debian 11's libandroid-23-java, fetched by apt into
a cache) with -Xlint:all -Werror, links the real resources with aapt2, dexes with dx for minSdk 24, aligns and
signs. Here the result is checked with the tools a store or a device uses (apksigner, zipalign, aapt, dexdump), the
Gradle build is checked to describe the same app, and planted API mistakes are shown to fail the build.
Skipped, with the reason, when a tool or Debian package cannot be had. ~40 s on 2 shared cores (one build and one
failing build of a copy with three planted mistakes); the first run also downloads ~15 MB from the Debian mirror
(~10 s more).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.android.conftest import ANDROID_DEMO
from tests.android.test_android_assets import model_copy

BUILD_APK = ANDROID_DEMO / "build_apk.py"
STORE_TOOLS = {"aapt": "aapt", "dexdump": "dexdump", "apksigner": "apksigner", "zipalign": "zipalign"}


def load_build_apk():
    spec = importlib.util.spec_from_file_location("build_apk", BUILD_APK)
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("build_apk", mod)
    spec.loader.exec_module(mod)
    return mod


def run_build(*args, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BUILD_APK), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def gradle_value(text: str, key: str) -> str:
    (value,) = re.findall(rf"^\s*{key}\s+['\"]?([^'\"\s]+)['\"]?\s*$", text, re.M)
    return value


@pytest.fixture(scope="module")
def assets(tmp_path_factory, lce_model, float_tflite_model) -> Path:
    """The app's assets as `python -m export.android_assets` writes them (the tiny runnable test models)."""
    from export.android_assets import main as assets_main
    from train.checkpoint import reactnet_payload, save_checkpoint
    from train.models import reactnet_a

    d = tmp_path_factory.mktemp("apk_assets")
    model = reactnet_a(width=0.25, input_size=32, num_blocks=1, num_classes=10)
    ckpt = save_checkpoint(d / "ckpt.pt", reactnet_payload(model, config={"data": {"dataset": "digits"}}))
    model_copy(lce_model, d / "lce.tflite")
    model_copy(float_tflite_model, d / "float.tflite")
    assert assets_main(["--lce", str(d / "lce.tflite"), "--float", str(d / "float.tflite"), "--checkpoint",
                        str(ckpt), "-o", str(d / "assets"), "--samples", "3"]) == 0
    return d / "assets"


@pytest.fixture(scope="module")
def apk(assets, tmp_path_factory) -> Path:
    """The signed debug APK, built once; skips with the build's own message when a tool or package is missing."""
    missing = [f"{t} (apt-get install -y {p})" for t, p in STORE_TOOLS.items() if shutil.which(t) is None]
    if missing:
        pytest.skip(f"store checks need {', '.join(missing)}")
    out = tmp_path_factory.mktemp("apk")
    r = run_build("--assets", assets, "--work", out / "work", "-o", out / "app-debug.apk", "--json")
    if r.returncode == 3:
        pytest.skip(f"build_apk.py: {r.stderr.strip().splitlines()[-1]}")
    assert r.returncode == 0, f"build_apk.py failed ({r.returncode}):\n{r.stdout}\n{r.stderr[-6000:]}"
    summary = json.loads(r.stdout)
    print(f"APK build: {summary['seconds']}")
    return Path(summary["apk"])


@pytest.fixture(scope="module")
def gradle() -> dict:
    app = (ANDROID_DEMO / "app/build.gradle").read_text()
    return {"app": app, "logic": (ANDROID_DEMO / "logic/build.gradle").read_text(),
            "settings": (ANDROID_DEMO / "settings.gradle").read_text(),
            "manifest": (ANDROID_DEMO / "app/src/main/AndroidManifest.xml").read_text(),
            **{k: gradle_value(app, k) for k in ("applicationId", "namespace", "minSdk", "targetSdk", "versionCode",
                                                 "versionName")}}


def tool(*cmd) -> str:
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"{cmd[0]} failed:\n{r.stdout}\n{r.stderr}"
    return r.stdout


# ------------------------------------------------------------------------------------------ store checks

def test_signature_verifies(apk):
    out = tool("apksigner", "verify", "--verbose", "--print-certs", apk)
    assert "Verified using v2 scheme (APK Signature Scheme v2): true" in out
    assert "certificate DN: CN=Android Debug, O=Android, C=US" in out


def test_zip_is_aligned(apk):
    tool("zipalign", "-c", "-p", "4", apk)


def test_badging_matches_the_gradle_build(apk, gradle):
    badging = tool("aapt", "dump", "badging", apk)
    assert (f"package: name='{gradle['applicationId']}' versionCode='{gradle['versionCode']}' "
            f"versionName='{gradle['versionName']}'") in badging
    assert f"sdkVersion:'{gradle['minSdk']}'" in badging
    assert f"targetSdkVersion:'{gradle['targetSdk']}'" in badging
    assert f"launchable-activity: name='{gradle['namespace']}.MainActivity'" in badging
    assert "application-debuggable" in badging
    declared = set(re.findall(r'<uses-permission[^>]*android:name="([^"]+)"', gradle["manifest"]))
    assert set(re.findall(r"^uses-permission: name='([^']+)'", badging, re.M)) == declared  # none: no extras


def test_manifest_activities(apk, gradle):
    tree = tool("aapt", "dump", "xmltree", apk, "AndroidManifest.xml")
    names = re.findall(r'A: android:name\(0x01010003\)="([^"]+)"', tree)
    assert {"org.burnedge.demo.MainActivity", "org.burnedge.demo.BenchActivity"} <= {
        gradle["namespace"] + n if n.startswith(".") else n for n in names}
    assert tree.count("android:exported(0x01010010)=(type 0x12)0xffffffff") == 2  # both exported (adb starts Bench)


def test_dex_holds_exactly_the_app_and_logic_classes(apk, tmp_path):
    with zipfile.ZipFile(apk) as z:
        assert [n for n in z.namelist() if n.endswith(".dex")] == ["classes.dex"]
        (tmp_path / "classes.dex").write_bytes(z.read("classes.dex"))
    dump = tool("dexdump", tmp_path / "classes.dex")
    assert "DEX version '03" in dump
    classes = set(re.findall(r"Class descriptor\s*:\s*'L([^;]+);'", dump))
    top_level = {c for c in classes if "$" not in c}
    sources = {str(p.relative_to(root).with_suffix(""))
               for root in (ANDROID_DEMO / "app/src/main/java", ANDROID_DEMO / "logic/src/main/java")
               for p in root.rglob("*.java")}
    assert top_level == sources | {"org/burnedge/demo/BuildConfig", "org/burnedge/demo/R"}
    # org.json and TensorFlow Lite come from the platform / lce-lite, never from this dex
    assert not [c for c in classes if c.startswith(("org/json/", "org/tensorflow/"))]


def test_assets_are_what_the_python_side_wrote(apk, assets):
    meta = json.loads((assets / "metadata.json").read_text())
    written = {str(p.relative_to(assets)) for p in assets.rglob("*") if p.is_file()}
    with zipfile.ZipFile(apk) as z:
        packed = {n[len("assets/"):]: z.getinfo(n) for n in z.namelist() if n.startswith("assets/")}
        assert set(packed) == written
        for name in written:
            assert z.read("assets/" + name) == (assets / name).read_bytes(), name
        for role in ("lce", "float"):
            info = packed[meta["models"][role]["file"]]
            data = z.read(info)
            assert hashlib.sha256(data).hexdigest() == meta["models"][role]["sha256"]
            # stored (noCompress) and 4-byte aligned, so AssetManager.openFd can memory-map it
            assert info.compress_type == zipfile.ZIP_STORED
            with open(apk, "rb") as f:
                f.seek(info.header_offset + 26)
                name_len, extra_len = int.from_bytes(f.read(2), "little"), int.from_bytes(f.read(2), "little")
            assert (info.header_offset + 30 + name_len + extra_len) % 4 == 0
    assert {s["file"] for s in meta["samples"]} <= set(packed)


# ------------------------------------------------------------------------------- Gradle and lane agree

def test_gradle_and_lane_build_the_same_app(gradle):
    """The lane reads its values from app/build.gradle; here both are read to check they describe one app."""
    lane = load_build_apk()
    cfg = lane.read_gradle_config(ANDROID_DEMO)
    assert (cfg.application_id, cfg.namespace, str(cfg.min_sdk), str(cfg.target_sdk), str(cfg.version_code),
            cfg.version_name) == tuple(gradle[k] for k in ("applicationId", "namespace", "minSdk", "targetSdk",
                                                           "versionCode", "versionName"))
    assert cfg.no_compress == ("tflite",) and re.search(r"^\s*noCompress 'tflite'\s*$", gradle["app"], re.M)
    # same sources: AGP's default source sets (no sourceSets override), the :logic module as a project dependency
    assert "sourceSets" not in gradle["app"] and "sourceSets" not in gradle["logic"]
    assert lane.SOURCE_SETS == {"manifest": "app/src/main/AndroidManifest.xml", "res": "app/src/main/res",
                                "assets": "app/src/main/assets",
                                "java": ("app/src/main/java", "logic/src/main/java")}
    assert "implementation project(':logic')" in gradle["app"] and "include ':app', ':logic'" in gradle["settings"]
    # same Java level in both modules and in the lane
    assert gradle["app"].count("JavaVersion.VERSION_1_8") == 2 and gradle["logic"].count("VERSION_1_8") == 2
    assert cfg.java_version == "1_8"
    # every BuildConfig field Gradle declares is set by the lane
    assert {n for _, n in cfg.build_config_fields} == set(lane.BUILD_CONFIG_VALUES) == {"TFLITE_RUNTIME"}
    # AGP 8 takes package and SDK levels from build.gradle, never from the manifest; so does the lane
    assert "package=" not in gradle["manifest"] and "<uses-sdk" not in gradle["manifest"]
    # the lane compiles against an android.jar no newer than minSdk: whatever it accepts exists on every device
    assert lane.ANDROID_JAR_API < cfg.min_sdk <= cfg.target_sdk <= cfg.compile_sdk
    # org.json comes from the platform: compile-only in Gradle, so it is never bundled
    assert "compileOnly 'com.vaadin.external.google:android-json:" in gradle["logic"]


# ------------------------------------------------------------------------------- the check can fail

PLANTS = {  # file -> (anchor, inserted line(s)): each insertion is one API mistake javac must report at its line
    # a method android.util.Log does not have
    "app/src/main/java/org/burnedge/demo/MainActivity.java": (
        "        super.onCreate(savedInstanceState);\n", "        android.util.Log.information(\"x\", \"y\");\n"),
    # a TensorFlow Lite Interpreter method that does not exist
    "app/src/main/java/org/burnedge/demo/TfliteModel.java": (
        "        setInput(nhwc);\n", "        interpreter.runInference(input, output);\n"),
    # java.util.Base64 is in the JDK's Java 8 library (run_host_tests.sh accepts it) but only in Android API 26+
    "logic/src/main/java/org/burnedge/demo/logic/Streams.java": (
        "    private Streams() {}\n", "    static String planted(byte[] b) { return java.util.Base64.getEncoder()"
                                     ".encodeToString(b); }\n"),
}


def test_planted_api_misuses_fail_the_build(apk, assets, tmp_path):
    """One build of a copy with three planted mistakes: it must fail, and javac must report each at its line."""
    project = tmp_path / "android_demo"
    shutil.copytree(ANDROID_DEMO, project, ignore=shutil.ignore_patterns("build", ".gradle", "assets", "*.class"))
    expected = []
    for rel, (anchor, insert) in PLANTS.items():
        src = project / rel
        text = src.read_text()
        assert text.count(anchor) == 1, f"anchor not found in {rel}"
        src.write_text(text.replace(anchor, anchor + insert))
        line = text[:text.index(anchor) + len(anchor)].count("\n") + 1
        expected.append(f"{Path(rel).name}:{line}: error: cannot find symbol")
    out = tmp_path / "app-debug.apk"
    r = run_build("--project", project, "--assets", assets, "--work", tmp_path / "work", "-o", out)
    assert r.returncode == 1, f"the planted errors were not caught:\n{r.stdout}\n{r.stderr[-3000:]}"
    for e in expected:
        assert e in r.stderr, f"{e!r} not reported:\n{r.stderr[-3000:]}"
    assert r.stderr.strip().splitlines()[-1].startswith("error: javac (app + logic against the real android.jar")
    assert not out.exists()


# ---------------------------------------------------------------------------------------------- CLI

def test_missing_assets_is_a_one_line_error(tmp_path, capsys):
    lane = load_build_apk()
    assert lane.main(["--assets", str(tmp_path / "none"), "--work", str(tmp_path / "w")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "python -m export.android_assets" in err[0]


def test_help(capsys):
    lane = load_build_apk()
    with pytest.raises(SystemExit) as e:
        lane.main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for opt in ("--assets", "--out", "--work", "--cache", "--android-jar", "--dx-jar", "--project"):
        assert opt in text


def test_missing_tools_are_named_with_their_package(assets, tmp_path):
    r = subprocess.run([sys.executable, str(BUILD_APK), "--assets", str(assets), "--work", str(tmp_path)],
                       capture_output=True, text=True, timeout=60, env={**os.environ, "PATH": str(tmp_path)})
    assert r.returncode == 3
    assert r.stderr.startswith("error: aapt2, zipalign, apksigner, javac, java, keytool not found (apt-get install")
    assert "aapt" in r.stderr.split("apt-get install -y")[1] and "openjdk-17-jdk-headless" in r.stderr


def test_apt_sources_in_both_formats_are_read(tmp_path):
    lane = load_build_apk()
    (tmp_path / "d.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n# off\nTypes: deb-src\nURIs: http://src\n"
        "Suites: bookworm\nComponents: main\n\nTypes: deb\nURIs: http://disabled\nSuites: bookworm\n"
        "Components: main\nEnabled: no\n")
    (tmp_path / "o.list").write_text("# deb http://commented bookworm main\n"
                                     "deb [arch=amd64 signed-by=/k.gpg] http://m2/debian bookworm main contrib\n")
    assert lane._apt_entries(tmp_path / "d.sources") == [
        {"uris": ["http://mirror.example/debian"], "suites": ["bookworm", "bookworm-updates"],
         "components": ["main"], "signed_by": "/usr/share/keyrings/debian-archive-keyring.gpg"}]
    assert lane._apt_entries(tmp_path / "o.list") == [
        {"uris": ["http://m2/debian"], "suites": ["bookworm"], "components": ["main", "contrib"],
         "signed_by": "/k.gpg"}]


def test_the_mirror_is_the_one_this_systems_apt_uses():
    if shutil.which("apt-config") is None or "ID=debian" not in Path("/etc/os-release").read_text():
        pytest.skip("not a Debian system with apt")
    lane = load_build_apk()
    uri, keyring = lane.debian_mirror()
    assert any(uri in f.read_text() for f in lane._apt_source_files())
    assert keyring is None or Path(keyring).is_file()
