#!/usr/bin/env python3
"""Build the demo app's signed debug APK without Gradle, from Debian's Android tools and the real android.jar.

    python android_demo/build_apk.py [--assets DIR] [-o APP.apk] [--work DIR] [--cache DIR]

The steps are the ones the Android Gradle plugin runs, without Gradle:

1. read applicationId, namespace, minSdk, targetSdk, versionCode/Name, noCompress and the BuildConfig fields from
   ``app/build.gradle``, so the Gradle build stays the one place these values are set;
2. get the real API 23 ``android.jar`` (Debian 11's libandroid-23-java) and ``dx`` (Debian 11's dalvik-exchange)
   with ``apt-get download`` from the Debian mirror this system's apt uses, into a private cache
   (``~/.cache/burn-edge/android``); nothing is installed into the system;
3. ``aapt2 compile`` + ``aapt2 link``: the manifest (package, SDK levels, versions and ``debuggable`` added, as
   AGP's manifest merger does for a debug build), the resources linked against the framework's, the assets folder
   with ``noCompress`` extensions (``.tflite``) stored uncompressed; aapt2 writes ``R.java``, this script
   ``BuildConfig.java``;
4. ``javac -Xlint:all -Werror`` of ``app/`` and ``logic/`` against ``android.jar`` (boot class path, API 23, below
   minSdk 24) and the project's compile-only TensorFlow Lite API (``tflite_api/``, never packaged);
5. ``dx --min-sdk-version=<minSdk>`` -> ``classes.dex``; ``zipalign -p 4``; ``apksigner sign`` with a debug key
   that ``keytool`` makes once (``<work>/debug.keystore``); then ``apksigner verify`` and ``zipalign -c``.

The APK carries no TensorFlow Lite runtime (``BuildConfig.TFLITE_RUNTIME`` is "compile-only"): it shows that the
app compiles, links and packages against the real platform. The app that runs models is built by Gradle with
lce-lite (android_demo/README.md).

Exit status: 0 built and verified; 1 a build step failed (its output is printed); 2 bad usage or assets; 3 a tool
or Debian package is unavailable (the message names it and how to get it). Python standard library only.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Debian 11 ("bullseye") packages, fetched and unpacked, never installed. Debian 12 no longer has them.
DEBIAN_SUITE = "bullseye"
DEBIAN_PACKAGES = {"libandroid-23-java": "6.0.1+r72-6", "dalvik-exchange": "10.0.0+r36-1"}
ANDROID_JAR = "usr/lib/android-sdk/platforms/android-23/android.jar"
ANDROID_JAR_API = 23
DX_JAR = "usr/share/java/com.android.dx.jar"

# Where Gradle (AGP's default source sets) finds each part; the lane reads exactly these.
SOURCE_SETS = {
    "manifest": "app/src/main/AndroidManifest.xml",
    "res": "app/src/main/res",
    "assets": "app/src/main/assets",
    "java": ("app/src/main/java", "logic/src/main/java"),
}
TFLITE_API = "tflite_api/src"

# BuildConfig fields declared by buildConfigField in app/build.gradle, with this lane's values (Java literals).
BUILD_CONFIG_VALUES = {"TFLITE_RUNTIME": '"compile-only"'}

TOOLS = {  # command -> Debian package that provides it
    "aapt2": "aapt", "zipalign": "zipalign", "apksigner": "apksigner",
    "javac": "openjdk-17-jdk-headless", "java": "openjdk-17-jdk-headless", "keytool": "openjdk-17-jdk-headless",
}
DEBUG_KEY = {"alias": "androiddebugkey", "password": "android", "dname": "CN=Android Debug,O=Android,C=US"}


class BuildError(Exception):
    """A failed build: ``code`` is the exit status (1 step failed, 2 bad input, 3 tool/package unavailable)."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


# ------------------------------------------------------------------------------------------- Gradle values

@dataclass(frozen=True)
class GradleConfig:
    """The values of app/build.gradle that shape the APK."""
    application_id: str
    namespace: str
    min_sdk: int
    target_sdk: int
    compile_sdk: int
    version_code: int
    version_name: str
    no_compress: tuple[str, ...]
    build_config_fields: tuple[tuple[str, str], ...]  # (Java type, name)
    java_version: str  # sourceCompatibility, e.g. "1_8"


def read_gradle_config(project: Path) -> GradleConfig:
    """Parse the plain literals of ``app/build.gradle`` (Groovy DSL as written there); BuildError(2) if one is
    missing or not a literal."""
    path = project / "app/build.gradle"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise BuildError(2, f"cannot read {path}: {e.strerror}") from None

    def one(pattern: str, what: str) -> str:
        found = re.findall(pattern, text, re.M)
        if len(found) != 1:
            raise BuildError(2, f"{path}: expected one literal {what}, found {len(found)}")
        return found[0]

    quoted = r"""['"]([^'"]+)['"]"""
    fields = tuple(re.findall(r"^\s*buildConfigField\s+'(\w+)',\s*'(\w+)'", text, re.M))
    no_compress = one(r"^\s*noCompress\s+(.+?)\s*$", "noCompress")
    return GradleConfig(
        application_id=one(rf"^\s*applicationId\s+{quoted}", "applicationId"),
        namespace=one(rf"^\s*namespace\s+{quoted}", "namespace"),
        min_sdk=int(one(r"^\s*minSdk\s+(\d+)\s*$", "minSdk")),
        target_sdk=int(one(r"^\s*targetSdk\s+(\d+)\s*$", "targetSdk")),
        compile_sdk=int(one(r"^\s*compileSdk\s+(\d+)\s*$", "compileSdk")),
        version_code=int(one(r"^\s*versionCode\s+(\d+)\s*$", "versionCode")),
        version_name=one(rf"^\s*versionName\s+{quoted}", "versionName"),
        no_compress=tuple(re.findall(quoted, no_compress)),
        build_config_fields=fields,
        java_version=one(r"^\s*sourceCompatibility\s+JavaVersion\.VERSION_(\w+)", "sourceCompatibility"),
    )


# ----------------------------------------------------------------------------- android.jar and dx from Debian

def _apt_source_files() -> list[Path]:
    """The system's apt source files (sources.list and sources.list.d/*), as apt's configuration names them."""
    out = subprocess.run(["apt-config", "shell", "SL", "Dir::Etc::SourceList/f", "SP", "Dir::Etc::SourceParts/d"],
                         capture_output=True, text=True, check=True).stdout
    paths = dict(re.findall(r"^(SL|SP)='([^']*)'", out, re.M))
    files = [Path(paths["SL"])] if paths.get("SL") else []
    if paths.get("SP"):
        files += sorted(Path(p) for p in glob.glob(os.path.join(paths["SP"], "*")) if p.endswith((".list", ".sources")))
    return [f for f in files if f.is_file()]


def _apt_entries(path: Path) -> list[dict]:
    """The deb entries of one sources file: {"uris", "suites", "components", "signed_by"} each."""
    text = path.read_text(encoding="utf-8", errors="replace")
    entries = []
    if path.suffix == ".sources":  # deb822 paragraphs
        for para in re.split(r"\n\s*\n", text):
            fields: dict[str, str] = {}
            key = None
            for line in para.splitlines():
                if line.startswith("#"):
                    continue
                if line[:1] in (" ", "\t") and key:
                    fields[key] += "\n" + line.strip()
                elif ":" in line:
                    key, value = line.split(":", 1)
                    key = key.strip().lower()
                    fields[key] = value.strip()
            if "deb" in fields.get("types", "").split() and fields.get("enabled", "yes").lower() != "no":
                entries.append({"uris": fields.get("uris", "").split(), "suites": fields.get("suites", "").split(),
                                "components": fields.get("components", "").split(),
                                "signed_by": fields.get("signed-by")})
    else:  # one-line format: deb [options] uri suite component...
        for line in text.splitlines():
            m = re.match(r"^\s*deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s*(.*)$", line)
            if m:
                opts = dict(o.split("=", 1) for o in (m.group(1) or "").split() if "=" in o)
                entries.append({"uris": [m.group(2)], "suites": [m.group(3)], "components": m.group(4).split(),
                                "signed_by": opts.get("signed-by")})
    return entries


def debian_mirror() -> tuple[str, str | None]:
    """(URI, keyring file or None) of the apt source serving this Debian release's ``main`` component: the same
    mirror serves the older release. BuildError(3) on a system without one (not Debian, no apt)."""
    try:
        release = dict(re.findall(r'^(\w+)="?([^"\n]*)"?$', Path("/etc/os-release").read_text(), re.M))
        files = _apt_source_files()
    except (OSError, FileNotFoundError, subprocess.CalledProcessError) as e:
        raise BuildError(3, f"cannot read the system's apt configuration ({e}); pass --android-jar and --dx-jar"
                            " instead") from None
    codename = release.get("VERSION_CODENAME", "")
    if release.get("ID") == "debian" and codename:
        for f in files:
            for e in _apt_entries(f):
                if codename in e["suites"] and "main" in e["components"] and e["uris"]:
                    keyring = e["signed_by"]
                    if keyring and not Path(keyring).is_file():  # an inline key block: fall back to apt's keys
                        keyring = None
                    return e["uris"][0], keyring
    raise BuildError(3, f"no Debian apt source for '{codename or '?'}' main on this system (ID={release.get('ID')});"
                        f" the build needs Debian {DEBIAN_SUITE}'s {' and '.join(DEBIAN_PACKAGES)}: pass"
                        " --android-jar and --dx-jar instead")


def _run_quiet(cmd: list[str], what: str, cwd: Path | None = None) -> None:
    """Run an apt/dpkg command; BuildError(3) with its error lines when it fails."""
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if r.returncode:
        out = (r.stderr + r.stdout).strip().splitlines()
        lines = [ln for ln in out if ln.startswith(("E:", "Err:"))] or out[-1:] or ["no output"]
        raise BuildError(3, f"{what} failed: {' | '.join(lines[-3:])}")


def fetch_debian_sdk(cache: Path) -> tuple[Path, Path]:
    """(android.jar, dx.jar) unpacked from Debian 11's packages under ``cache`` (downloaded once, then reused).

    A private apt configuration (own sources list, state, cache and empty preferences; the system's mirror and
    keyring) downloads the exact package versions; apt checks them against the mirror's signed index; ``dpkg-deb
    -x`` unpacks them. BuildError(3) with apt's message when they cannot be had."""
    root = cache / f"debian-{DEBIAN_SUITE}"
    unpacked = root / "root"
    ready = root / "READY"
    stamp = json.dumps(DEBIAN_PACKAGES, sort_keys=True)
    try:
        cache.mkdir(parents=True, exist_ok=True)
        lock = open(cache / ".lock", "w")
    except OSError as e:
        raise BuildError(2, f"cannot use the cache folder {cache}: {e.strerror} (pick one with --cache)") from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one download at a time per cache
        if not (ready.is_file() and ready.read_text() == stamp):
            for tool in ("apt-get", "dpkg-deb"):
                if shutil.which(tool) is None:
                    raise BuildError(3, f"{tool} not found: fetching {DEBIAN_SUITE}'s packages needs apt and dpkg;"
                                        " pass --android-jar and --dx-jar instead")
            uri, keyring = debian_mirror()
            shutil.rmtree(root, ignore_errors=True)
            apt = root / "apt"
            for d in ("etc/sources.list.d", "etc/preferences.d", "state/lists/partial", "cache/archives/partial",
                      "debs"):
                (apt / d).mkdir(parents=True)
            (apt / "state/status").touch()
            (apt / "etc/preferences").touch()
            signed = f" [signed-by={keyring}]" if keyring else ""
            (apt / "etc/sources.list").write_text(f"deb{signed} {uri} {DEBIAN_SUITE} main\n")
            opts = []
            for key, value in (("Dir::Etc::SourceList", apt / "etc/sources.list"),
                               ("Dir::Etc::SourceParts", apt / "etc/sources.list.d"),
                               ("Dir::Etc::Preferences", apt / "etc/preferences"),
                               ("Dir::Etc::PreferencesParts", apt / "etc/preferences.d"),
                               ("Dir::State", apt / "state"), ("Dir::State::Lists", apt / "state/lists"),
                               ("Dir::State::status", apt / "state/status"), ("Dir::Cache", apt / "cache"),
                               ("Dir::Cache::archives", apt / "cache/archives"), ("Debug::NoLocking", "1"),
                               ("APT::Get::List-Cleanup", "0")):
                opts += ["-o", f"{key}={value}"]
            if os.geteuid() == 0:  # apt would download as _apt, which may not enter this cache folder
                opts += ["-o", "APT::Sandbox::User=root"]
            where = f"{uri} {DEBIAN_SUITE} main"
            _run_quiet(["apt-get", "-q", *opts, "update", "--error-on=any"], f"apt-get update of {where}")
            _run_quiet(["apt-get", "-q", *opts, "download", *(f"{p}={v}" for p, v in DEBIAN_PACKAGES.items())],
                       f"apt-get download of {', '.join(f'{p}={v}' for p, v in DEBIAN_PACKAGES.items())} from"
                       f" {where}", cwd=apt / "debs")
            for deb in sorted((apt / "debs").glob("*.deb")):
                _run_quiet(["dpkg-deb", "-x", str(deb), str(unpacked)], f"dpkg-deb -x {deb.name}")
            shutil.rmtree(apt)  # keep only the unpacked files (~17 MB)
            ready.write_text(stamp)
    jar, dx = unpacked / ANDROID_JAR, unpacked / DX_JAR
    for p in (jar, dx):
        if not p.is_file():
            raise BuildError(3, f"{p} missing after unpacking {', '.join(DEBIAN_PACKAGES)} (delete {root} to retry)")
    return jar, dx


# ----------------------------------------------------------------------------------------------- the build

def check_tools() -> dict[str, str]:
    missing = sorted({TOOLS[t] for t in TOOLS if shutil.which(t) is None})
    if missing:
        names = [t for t in TOOLS if shutil.which(t) is None]
        raise BuildError(3, f"{', '.join(names)} not found (apt-get install -y {' '.join(missing)})")
    return {t: shutil.which(t) for t in TOOLS}


def check_assets(assets: Path) -> dict:
    """metadata.json of the assets folder (written by ``python -m export.android_assets``), with every file it
    names present; BuildError(2) otherwise."""
    meta_path = assets / "metadata.json"
    hint = f"write the assets first: python -m export.android_assets ... -o {assets}"
    if not meta_path.is_file():
        raise BuildError(2, f"{meta_path} not found; {hint}")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BuildError(2, f"{meta_path} is not readable JSON ({e}); {hint}") from None
    if not isinstance(meta, dict) or meta.get("format") != "burn-edge/android-assets":
        raise BuildError(2, f"{meta_path} is not a burn-edge assets file; {hint}")
    files = [m["file"] for m in (meta.get("models") or {}).values() if isinstance(m, dict) and "file" in m]
    files += [s["file"] for s in meta.get("samples") or [] if isinstance(s, dict) and "file" in s]
    missing = [f for f in files if not (assets / f).is_file()]
    if missing:
        raise BuildError(2, f"{meta_path} names files that are not there: {', '.join(missing)}; {hint}")
    return meta


def merged_manifest(project: Path, cfg: GradleConfig) -> str:
    """The source manifest with what AGP's manifest merger adds: the package (= namespace; applicationId is applied
    by aapt2 --rename-manifest-package). minSdk/targetSdk/versions/debuggable are added by aapt2 link's flags."""
    text = (project / SOURCE_SETS["manifest"]).read_text(encoding="utf-8")
    if re.search(r"<manifest\b[^>]*\spackage=", text):
        raise BuildError(2, "AndroidManifest.xml sets package=; AGP 8 takes it from namespace in app/build.gradle")
    if "<uses-sdk" in text:
        raise BuildError(2, "AndroidManifest.xml has <uses-sdk>; AGP takes the SDK levels from app/build.gradle")
    return re.sub(r"<manifest\b", f'<manifest package="{cfg.namespace}"', text, count=1)


def build_config_java(cfg: GradleConfig) -> str:
    """BuildConfig.java as AGP generates it for the debug build type, with this lane's buildConfigField values."""
    unknown = [name for _, name in cfg.build_config_fields if name not in BUILD_CONFIG_VALUES]
    if unknown:
        raise BuildError(2, f"app/build.gradle declares BuildConfig field(s) {unknown} that build_apk.py does not"
                            " set: add them to BUILD_CONFIG_VALUES")
    lines = [f"package {cfg.namespace};", "", "/** Generated by android_demo/build_apk.py (as AGP would). */",
             "public final class BuildConfig {",
             '  public static final boolean DEBUG = Boolean.parseBoolean("true");',
             f'  public static final String APPLICATION_ID = "{cfg.application_id}";',
             '  public static final String BUILD_TYPE = "debug";',
             f"  public static final int VERSION_CODE = {cfg.version_code};",
             f'  public static final String VERSION_NAME = "{cfg.version_name}";']
    lines += [f"  public static final {jtype} {name} = {BUILD_CONFIG_VALUES[name]};"
              for jtype, name in cfg.build_config_fields]
    return "\n".join(lines + ["}", ""])


def run_step(step: str, cmd: list[str], cwd: Path | None = None) -> str:
    """Run one tool; on failure print its output and raise BuildError(1) naming the step."""
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True)
    if r.returncode:
        sys.stderr.write(r.stdout + r.stderr)
        raise BuildError(1, f"{step} failed (exit {r.returncode}): {shlex.join(str(c) for c in cmd)[:300]}")
    return r.stdout + r.stderr


def java_sources(*dirs: Path) -> list[Path]:
    return sorted(p for d in dirs for p in d.rglob("*.java"))


def javac(out: Path, sources: list[Path], android_jar: Path, java_version: str, classpath: list[Path],
          step: str, tools: dict[str, str]) -> None:
    """javac -Xlint:all -Werror against android.jar as the boot class path (the Android library, not the JDK's)."""
    out.mkdir(parents=True)
    level = java_version.replace("1_", "")
    cmd = [tools["javac"], "-source", level, "-target", level, "-bootclasspath", android_jar, "-Xlint:all",
           "-Werror", "-encoding", "UTF-8", "-d", out]
    if classpath:
        cmd += ["-classpath", os.pathsep.join(map(str, classpath))]
    run_step(step, cmd + sources)


def debug_keystore(path: Path, tools: dict[str, str]) -> Path:
    """The debug signing key (made once by keytool, like Android Studio's ~/.android/debug.keystore)."""
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.unlink(missing_ok=True)
        k = DEBUG_KEY
        run_step("keytool", [tools["keytool"], "-genkeypair", "-keystore", tmp, "-storetype", "PKCS12",
                             "-storepass", k["password"], "-keypass", k["password"], "-alias", k["alias"],
                             "-keyalg", "RSA", "-keysize", "2048", "-validity", "10000", "-dname", k["dname"]])
        os.replace(tmp, path)
    return path


def check_stored(apk: Path, extensions: tuple[str, ...]) -> list[str]:
    """Names of the APK's entries with a noCompress extension; BuildError(1) if one of them is compressed."""
    with zipfile.ZipFile(apk) as z:
        hits = [i for i in z.infolist() if i.filename.endswith(tuple("." + e.lstrip(".") for e in extensions))]
    bad = [i.filename for i in hits if i.compress_type != zipfile.ZIP_STORED]
    if bad:
        raise BuildError(1, f"compressed in the APK although noCompress: {', '.join(bad)}")
    return [i.filename for i in hits]


def build(project: Path, assets: Path, out_apk: Path, work: Path, cache: Path,
          android_jar: Path | None = None, dx_jar: Path | None = None) -> dict:
    """Build, sign and verify the debug APK; returns a summary (path, bytes, seconds per step)."""
    t0 = time.monotonic()
    times: dict[str, float] = {}

    def lap(name: str, since: list[float]) -> None:
        now = time.monotonic()
        times[name] = round(now - since[0], 2)
        since[0] = now

    mark = [t0]
    cfg = read_gradle_config(project)
    meta = check_assets(assets)
    tools = check_tools()
    if (android_jar is None) != (dx_jar is None):
        raise BuildError(2, "pass both --android-jar and --dx-jar, or neither")
    if android_jar is None:
        android_jar, dx_jar = fetch_debian_sdk(cache)
    for p in (android_jar, dx_jar):
        if not p.is_file():
            raise BuildError(2, f"{p} not found")
    lap("sdk", mark)

    inter = work / "intermediates"
    shutil.rmtree(inter, ignore_errors=True)
    gen = inter / "generated"
    gen.mkdir(parents=True)
    manifest = inter / "AndroidManifest.xml"
    manifest.write_text(merged_manifest(project, cfg), encoding="utf-8")
    build_config = gen / Path(*cfg.namespace.split(".")) / "BuildConfig.java"
    build_config.parent.mkdir(parents=True)
    build_config.write_text(build_config_java(cfg), encoding="utf-8")

    run_step("aapt2 compile", [tools["aapt2"], "compile", "--dir", project / SOURCE_SETS["res"],
                               "-o", inter / "res.zip"])
    linked = inter / "linked.apk"
    link = [tools["aapt2"], "link", "-o", linked, "-I", android_jar, "--manifest", manifest, "--java", gen,
            "--min-sdk-version", str(cfg.min_sdk), "--target-sdk-version", str(cfg.target_sdk),
            "--version-code", str(cfg.version_code), "--version-name", cfg.version_name, "--debug-mode",
            "-A", assets]
    if cfg.application_id != cfg.namespace:
        link += ["--rename-manifest-package", cfg.application_id]
    for ext in cfg.no_compress:  # this aapt2 (2.19) matches "-0" against the file name's end: give the dot
        link += ["-0", "." + ext.lstrip(".")]
    run_step("aapt2 link", link + [inter / "res.zip"])
    lap("aapt2", mark)

    api_classes, classes = inter / "tflite_api_classes", inter / "classes"
    javac(api_classes, java_sources(project / TFLITE_API), android_jar, cfg.java_version, [],
          "javac (compile-only TensorFlow Lite API)", tools)
    javac(classes, java_sources(*(project / d for d in SOURCE_SETS["java"]), gen), android_jar, cfg.java_version,
          [api_classes], f"javac (app + logic against the real android.jar, API {ANDROID_JAR_API})", tools)
    lap("javac", mark)

    dex_dir = inter / "dex"
    dex_dir.mkdir()
    run_step("dx", [tools["java"], "-cp", dx_jar, "com.android.dx.command.Main", "--dex",
                    f"--min-sdk-version={cfg.min_sdk}", f"--output={dex_dir / 'classes.dex'}", classes])
    unsigned = inter / "unsigned.apk"
    shutil.copyfile(linked, unsigned)
    with zipfile.ZipFile(unsigned, "a", compression=zipfile.ZIP_DEFLATED) as z:
        z.write(dex_dir / "classes.dex", "classes.dex")
    lap("dx", mark)

    aligned = inter / "aligned.apk"
    run_step("zipalign", [tools["zipalign"], "-f", "-p", "4", unsigned, aligned])
    signed = inter / "signed.apk"
    key = debug_keystore(work / "debug.keystore", tools)
    run_step("apksigner sign", [tools["apksigner"], "sign", "--ks", key, "--ks-key-alias", DEBUG_KEY["alias"],
                                "--ks-pass", f"pass:{DEBUG_KEY['password']}",
                                "--key-pass", f"pass:{DEBUG_KEY['password']}", "--min-sdk-version", str(cfg.min_sdk),
                                "--out", signed, aligned])
    lap("sign", mark)
    run_step("apksigner verify", [tools["apksigner"], "verify", "--min-sdk-version", str(cfg.min_sdk), signed])
    run_step("zipalign -c", [tools["zipalign"], "-c", "-p", "4", signed])
    stored = check_stored(signed, cfg.no_compress)
    lap("verify", mark)

    out_apk.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out_apk.name}.", suffix=".tmp", dir=out_apk.parent)
    os.close(fd)
    try:
        shutil.copyfile(signed, tmp)
        os.replace(tmp, out_apk)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return {"apk": str(out_apk), "bytes": out_apk.stat().st_size, "package": cfg.application_id,
            "min_sdk": cfg.min_sdk, "target_sdk": cfg.target_sdk, "stored_uncompressed": stored,
            "models": sorted(k for k, v in (meta.get("models") or {}).items() if v),
            "seconds": {**times, "total": round(time.monotonic() - t0, 2)}}


# ---------------------------------------------------------------------------------------------------- CLI

def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "burn-edge" / "android"


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python android_demo/build_apk.py", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Build the demo app's signed debug APK without Gradle (Debian's aapt2, dx, zipalign, apksigner;"
                    " the real API 23 android.jar) and verify it. The APK has no TensorFlow Lite runtime: it checks"
                    " that the app compiles and packages against the real platform.",
        epilog="example:\n  python -m export.android_assets --lce out/m.tflite --float out/m_float.tflite \\\n"
               "      --checkpoint runs/digits/final.pt -o android_demo/app/src/main/assets\n"
               "  python android_demo/build_apk.py\n\n"
               "exit status: 0 built and verified, 1 a build step failed, 2 bad usage or assets,\n"
               "3 a tool or Debian package is unavailable")
    p.add_argument("--project", type=Path, default=HERE,
                   help="the android_demo folder to build (default: the one this script is in)")
    p.add_argument("--assets", type=Path, default=None,
                   help="assets folder written by python -m export.android_assets (default: PROJECT/"
                        f"{SOURCE_SETS['assets']})")
    p.add_argument("-o", "--out", type=Path, default=None, help="the APK to write (default: WORK/app-debug.apk)")
    p.add_argument("--work", type=Path, default=None,
                   help="intermediate files and the debug keystore (default: PROJECT/build/apk)")
    p.add_argument("--cache", type=Path, default=default_cache(),
                   help="where Debian's android.jar and dx are unpacked once (default: %(default)s)")
    p.add_argument("--android-jar", type=Path, default=None,
                   help="use this android.jar instead of Debian's API 23 one (with --dx-jar)")
    p.add_argument("--dx-jar", type=Path, default=None, help="use this dx.jar instead of Debian's (with --android-jar)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    project = args.project.resolve()
    work = (args.work or project / "build/apk").resolve()
    try:
        if not (project / "app/build.gradle").is_file():
            raise BuildError(2, f"{project} is not the android_demo folder (no app/build.gradle)")
        summary = build(project, (args.assets or project / SOURCE_SETS["assets"]).resolve(),
                        (args.out or work / "app-debug.apk").resolve(), work, args.cache.resolve(),
                        args.android_jar, args.dx_jar)
    except BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.code
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        s = summary["seconds"]
        print(f"wrote {summary['apk']} ({summary['bytes']} bytes, {summary['package']}, minSdk {summary['min_sdk']},"
              f" targetSdk {summary['target_sdk']}); signed and verified in {s['total']} s "
              f"({', '.join(f'{k} {v}' for k, v in s.items() if k != 'total')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
