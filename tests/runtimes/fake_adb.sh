#!/bin/sh
# Stand-in for Android's adb (no device on the test host): "push" copies files, "shell" runs the command with the
# host's sh, so the transport code paths (argument building, push, shell, exit-status marker) run for real.
# FAKE_ADB_SERIALS lists the "connected" serials.
serial=""
if [ "$1" = "-s" ]; then serial="$2"; shift 2; fi
if [ -n "$serial" ] && ! echo " $FAKE_ADB_SERIALS " | grep -q " $serial "; then
  echo "adb: device '$serial' not found" >&2; exit 1
fi
cmd="$1"; shift
case "$cmd" in
  push) mkdir -p "$(dirname "$2")" && cp "$1" "$2" && echo "$1: 1 file pushed, 0 skipped." ;;
  shell) exec sh -c "$*" ;;
  *) echo "adb: unknown command $cmd" >&2; exit 1 ;;
esac
