#!/usr/bin/env bash
# Builds the Debian package of piled from the compiled tree (npm run build) and the installed
# node_modules:  bash scripts/package/build-deb.sh [OUTDIR]   (npm run package)
#
# The package is per architecture (Architecture = `dpkg --print-architecture` of the build host):
# it carries the native modules (better-sqlite3, serialport's bindings, bleno/noble's HCI socket,
# epoll, unix-dgram, usb) as they were built by `npm ci` for this machine and this Node major, so
# it also depends on that Node major. An arm64 or armhf package is built the same way on that
# architecture (the Pi itself, or an arm64/armhf Debian root under qemu-user-static).
#
# Environment: PILED_PKG_VERSION overrides the version (default: package.json "version");
# PILED_DEB_COMPRESS the dpkg-deb compressor (default xz; the test tier uses gzip, quicker).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
top="$(cd "$here/../.." && pwd)"
out="${1:-$top/build/package}"
cd "$top"

fail() { echo "build-deb: $*" >&2; exit 1; }
[ -f dist/src/daemon/piled.js ] && [ -f dist/src/cli/pilectl.js ] || fail "dist/ is missing: run npm run build"
# The control socket's peer-credential addon (scripts/build-native.mjs) ships inside dist/src.
[ -f dist/src/native/peercred.node ] || fail "dist/src/native/peercred.node is missing: run npm run build"
command -v dpkg-deb >/dev/null || fail "dpkg-deb not found (Debian package dpkg)"

version="${PILED_PKG_VERSION:-$(node -p 'require("./package.json").version')}"
[[ "$version" =~ ^[0-9][A-Za-z0-9.+~-]*$ ]] || fail "bad version '$version'"
arch="$(dpkg --print-architecture)"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
(( node_major >= 20 )) || fail "Node $node_major: piled needs Node 20 or later"

stage="$(mktemp -d "${TMPDIR:-/tmp}/piled-deb.XXXXXX")"
trap 'rm -rf "$stage"' EXIT
r="$stage/root"
lib="$r/usr/lib/piled"
mkdir -p "$lib" "$r/usr/bin" "$r/usr/lib/systemd/system" "$r/usr/lib/sysusers.d" \
  "$r/etc/udev/rules.d" "$r/usr/share/piled" "$r/usr/share/doc/piled" "$r/DEBIAN"

# The daemon: compiled sources, package.json (the version is read from it), run-time modules.
cp -a dist/src "$lib/dist-src.tmp" && mkdir -p "$lib/dist" && mv "$lib/dist-src.tmp" "$lib/dist/src"
node -e '
  const p = require("./package.json");
  const keep = { name: p.name, version: process.argv[1], description: p.description, license: p.license,
    type: p.type, engines: p.engines, dependencies: p.dependencies };
  process.stdout.write(JSON.stringify(keep, null, 2) + "\n");' "$version" >"$lib/package.json"
node "$here/prod-modules.mjs" "$top" >"$stage/modules"
while read -r m; do
  mkdir -p "$lib/$(dirname "$m")"
  cp -a "$m" "$lib/$m"
done <"$stage/modules"
# What only the module builds needed: sources, objects, other platforms' prebuilt binaries.
rm -rf "$lib/node_modules/better-sqlite3/deps" "$lib/node_modules/better-sqlite3/src"
find "$lib/node_modules" \( -path '*/build/Release/obj.target' -o -path '*/build/Release/.deps' \
  -o -path '*/build/Release/obj' -o -name '*.o' -o -name '*.a' -o -name '*.tlog' \) -prune -exec rm -rf {} +
node_arch="$(node -p process.arch)"
find "$lib/node_modules" -type d -path '*/prebuilds/*' ! -path '*/prebuilds/*/*' \
  ! -name "linux-$node_arch" -prune -exec rm -rf {} + 2>/dev/null || true
find "$lib" -type f -exec chmod u+rw,go+r,go-w {} + && find "$lib" -type d -exec chmod 0755 {} +

for b in piled:daemon/piled.js pilectl:cli/pilectl.js; do
  cat >"$r/usr/bin/${b%%:*}" <<SH
#!/bin/sh
exec /usr/bin/node /usr/lib/piled/dist/src/${b#*:} "\$@"
SH
  chmod 0755 "$r/usr/bin/${b%%:*}"
done
install -m 0644 systemd/piled.service "$r/usr/lib/systemd/system/piled.service"
install -m 0644 systemd/piled.sysusers "$r/usr/lib/sysusers.d/piled.conf"
install -m 0644 udev/99-piled.rules "$r/etc/udev/rules.d/99-piled.rules"
install -m 0644 config/piled.example.json "$r/usr/share/piled/piled.example.json"
install -m 0644 systemd/ble-hci.conf "$r/usr/share/piled/ble-hci.conf"
install -m 0644 README.md "$r/usr/share/doc/piled/README.md"
printf 'piled %s\nLicense: MIT\n' "$version" >"$r/usr/share/doc/piled/copyright"

for s in postinst prerm postrm; do install -m 0755 "$here/$s" "$r/DEBIAN/$s"; done
echo /etc/udev/rules.d/99-piled.rules >"$r/DEBIAN/conffiles"
size="$(du -sk --exclude=DEBIAN "$r" | cut -f1)"
cat >"$r/DEBIAN/control" <<CTL
Package: piled
Version: $version
Architecture: $arch
Maintainer: piled maintainers <piled@localhost>
Installed-Size: $size
Depends: nodejs (>= $node_major), nodejs (<< $((node_major + 1))), systemd
Section: misc
Priority: optional
Homepage: file:/usr/share/doc/piled/README.md
Description: controller daemon of an EV charging pile
 piled drives one charging pile: BLE charging-code unlock, GPIO relays and
 feedback, a Modbus RTU energy meter, a technician console and pilectl.
 Built for Node $node_major ($arch): its native modules match that Node major.
CTL
mkdir -p "$out"
deb="$out/piled_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Z"${PILED_DEB_COMPRESS:-xz}" --build "$r" "$deb" >/dev/null
echo "$deb"
