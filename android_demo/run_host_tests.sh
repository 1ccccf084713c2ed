#!/usr/bin/env bash
# Compile the app's plain-Java logic (logic/) and run its JUnit 4 tests on the host JVM.
# No Gradle, no Android SDK, no network: javac/java + Debian's junit4 jar and Android's org.json
# (the implementation Android ships, packaged by Debian as libandroid-json-java).
#
#   android_demo/run_host_tests.sh [--build-dir DIR]
#
# --build-dir DIR  put the .class files in DIR and keep them (the Python tests then run
#                  org.burnedge.demo.logic.HostTool from DIR); default: a temp folder, deleted on exit.
# Environment: JUNIT_JAR, HAMCREST_JAR, JSON_JAR override the jar paths (defaults: Debian's junit4 and
#              libandroid-json-java packages, `apt-get install -y junit4 libandroid-json-java`);
#              JAVAC / JAVA override the tools.
# Exit status: 0 all tests passed, 1 a test or the compile failed, 2 bad usage, 3 javac/java/JUnit missing.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
build_dir=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build-dir) build_dir="${2:?--build-dir needs a folder}"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

JAVAC="${JAVAC:-javac}"
JAVA="${JAVA:-java}"
JUNIT_JAR="${JUNIT_JAR:-/usr/share/java/junit4.jar}"
HAMCREST_JAR="${HAMCREST_JAR:-/usr/share/java/hamcrest-core.jar}"
JSON_JAR="${JSON_JAR:-/usr/share/java/com.android.json.jar}"
for tool in "$JAVAC" "$JAVA"; do
  command -v "$tool" >/dev/null || { echo "error: $tool not found (apt-get install -y openjdk-17-jdk-headless)" >&2; exit 3; }
done
for jar in "$JUNIT_JAR" "$HAMCREST_JAR" "$JSON_JAR"; do
  [[ -f "$jar" ]] || { echo "error: $jar not found (apt-get install -y junit4 libandroid-json-java, or set" \
    "JUNIT_JAR/HAMCREST_JAR/JSON_JAR)" >&2; exit 3; }
done

if [[ -z "$build_dir" ]]; then
  build_dir="$(mktemp -d "${TMPDIR:-/tmp}/burn-edge-android-host.XXXXXX")"
  trap 'rm -rf "$build_dir"' EXIT
fi
mkdir -p "$build_dir/main" "$build_dir/test"

main_src="$here/logic/src/main/java"
test_src="$here/logic/src/test/java"

# The logic module must stay Android-free, so it runs here and in the app alike.
if grep -rlE '^\s*import\s+(android|androidx)\.' "$main_src" "$test_src"; then
  echo "error: the files above import android.*; logic/ must be plain Java" >&2
  exit 1
fi

# --release 8: the app's minSdk (24) gives the Java 8 library; compiling against it catches newer APIs.
# (build_apk.py compiles the same sources against the real android.jar as well.)
"$JAVAC" --release 8 -Xlint:all -Werror -encoding UTF-8 -d "$build_dir/main" -cp "$JSON_JAR" \
  $(find "$main_src" -name '*.java' | sort)
"$JAVAC" --release 8 -Xlint:all -encoding UTF-8 -d "$build_dir/test" \
  -cp "$build_dir/main:$JSON_JAR:$JUNIT_JAR:$HAMCREST_JAR" $(find "$test_src" -name '*.java' | sort)

tests=$(cd "$test_src" && find . -name '*Test.java' | sed 's|^\./||; s|\.java$||; s|/|.|g' | sort)
echo "running $(echo "$tests" | wc -l) JUnit test classes from $test_src"
# shellcheck disable=SC2086
"$JAVA" -cp "$build_dir/main:$build_dir/test:$JSON_JAR:$JUNIT_JAR:$HAMCREST_JAR" org.junit.runner.JUnitCore $tests
