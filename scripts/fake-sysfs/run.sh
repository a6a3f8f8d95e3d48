#!/usr/bin/env bash
# Runs a command against a fake legacy-sysfs GPIO tree at /sys/class/gpio. Must itself run in a
# private mount namespace, as root:
#   unshare -m --propagation private bash scripts/fake-sysfs/run.sh <command> [args...]
# An overlay (or a tmpfs with the real class directories bound back in) goes over /sys/class,
# a tmpfs over /sys/class/gpio, which gets one gpiochip<base>/{label,base,ngpio} per chip of FAKE_GPIO_CHIPS
# ("label:base:ngpio ...", default "pinctrl-bcm2711:512:58 raspberrypi-exp-gpio:570:8") and
# export/unexport files served by export-helper.mjs. Prints "helper-pid <pid>" on stderr, so a
# caller can kill the helper by PID should this shell itself be killed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
node="${NODE:-node}"
[ "$#" -ge 1 ] || { echo "usage: run.sh <command> [args...]" >&2; exit 2; }
if [ "$(id -u)" -ne 0 ]; then echo "run.sh: needs root (mounts tmpfs over /sys/class)" >&2; exit 2; fi
# refuse to cover the host's own /sys/class: only inside a private mount namespace
if [ "$(readlink /proc/self/ns/mnt)" = "$(readlink /proc/1/ns/mnt)" ]; then
  echo "run.sh: not in a private mount namespace (run it under unshare -m --propagation private)" >&2
  exit 2
fi

work="$(mktemp -d)"
helper_pid=""
cleanup() {
  [ -n "$helper_pid" ] && kill "$helper_pid" 2>/dev/null && wait "$helper_pid" 2>/dev/null
  mountpoint -q "$work/real" && umount -l "$work/real"
  mountpoint -q "$work" && umount -l "$work"
  rm -rf "$work"
}
trap cleanup EXIT

# /sys/class must stay readable (net, tty, … for whatever runs inside) yet get a gpio entry:
# an overlay with the real /sys/class below (one mount), else a tmpfs with each real class
# directory bound back in (slower: one mount per class).
mount -t tmpfs -o mode=0700 piled-fake-work "$work"
mkdir "$work/up" "$work/wk" "$work/real"
if ! mount -t overlay -o "lowerdir=/sys/class,upperdir=$work/up,workdir=$work/wk" piled-fake-class /sys/class 2>/dev/null; then
  mount --bind /sys/class "$work/real"
  mount -t tmpfs -o mode=0755 piled-fake-class /sys/class
  for d in "$work"/real/*; do
    name="$(basename "$d")"
    [ "$name" = gpio ] && continue
    mkdir "/sys/class/$name"
    mount --bind "$d" "/sys/class/$name"
  done
  umount -l "$work/real"
fi

mkdir /sys/class/gpio
mount -t tmpfs -o mode=0755 piled-fake-gpio /sys/class/gpio
for chip in ${FAKE_GPIO_CHIPS:-pinctrl-bcm2711:512:58 raspberrypi-exp-gpio:570:8}; do
  IFS=: read -r label base ngpio <<<"$chip"
  mkdir "/sys/class/gpio/gpiochip$base"
  echo "$label" >"/sys/class/gpio/gpiochip$base/label"
  echo "$base" >"/sys/class/gpio/gpiochip$base/base"
  echo "$ngpio" >"/sys/class/gpio/gpiochip$base/ngpio"
done
: >/sys/class/gpio/export
: >/sys/class/gpio/unexport

"$node" "$here/export-helper.mjs" /sys/class/gpio >"$work/helper.out" &
helper_pid=$!
echo "helper-pid $helper_pid" >&2
for _ in $(seq 1 500); do
  grep -q ready "$work/helper.out" 2>/dev/null && break
  kill -0 "$helper_pid" 2>/dev/null || { echo "run.sh: export helper died" >&2; exit 1; }
  sleep 0.01
done
grep -q ready "$work/helper.out" || { echo "run.sh: export helper not ready" >&2; exit 1; }

set +e
"$@"
status=$?
set -e
exit "$status"
