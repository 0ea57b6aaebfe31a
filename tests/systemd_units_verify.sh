#!/usr/bin/env bash
# systemd_units_verify: `systemd-analyze verify` of the units as `cmake --install` puts them,
# with the binaries they name, in a staged root (DESTDIR) that also holds this system's own units
# (the targets ours are ordered against). Also checks that the udev rules land in the udev rules
# directory and name the installed helper. Usage: BUILD_DIR UNITDIR RULESDIR SBINDIR UNIT...
set -euo pipefail
build=$1 unitdir=$2 rulesdir=$3 sbindir=$4
shift 4
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
DESTDIR=$stage cmake --install "$build" >/dev/null
mkdir -p "$stage/lib/systemd/system" "$stage/bin" "$stage/sbin"
# This system's units, without overwriting ours.
cp -rn /lib/systemd/system/. "$stage/lib/systemd/system/" 2>/dev/null || true
cp /bin/true "$stage/bin/true"
[[ -e $stage/sbin/modprobe ]] || cp "$(command -v modprobe || echo /bin/true)" "$stage/sbin/modprobe"
units=()
for u in "$@"; do
  f=$stage$unitdir/$u
  [[ -f $f ]] || { echo "FAIL: $u not installed in $unitdir"; exit 1; }
  units+=("$f")
  for exe in $(sed -n 's/^Exec[A-Za-z]*=[-@!+]*\([^ ]*\).*/\1/p' "$f"); do
    [[ -x $stage$exe ]] || { echo "FAIL: $u runs $exe, which the install does not provide"; exit 1; }
  done
  grep -q '^Documentation=man:' "$f" && { echo "FAIL: $u names a man page that is not shipped"; exit 1; }
done
out=$(SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --root="$stage" "${units[@]}" 2>&1) || {
  echo "$out"
  echo "FAIL: systemd-analyze verify"
  exit 1
}
# Anything it printed is a warning about our units (unknown keys, bad values): not accepted.
if grep -E 'nvmf-ublk' <<<"$out"; then
  echo "FAIL: systemd-analyze verify warned"
  exit 1
fi
rules=$stage$rulesdir/60-nvmf-ublk.rules
[[ -f $rules ]] || { echo "FAIL: udev rules not installed in $rulesdir"; exit 1; }
grep -q "IMPORT{program}=\"$sbindir/nvmf-ublk udev-info %k\"" "$rules" ||
  { echo "FAIL: udev rules do not run the installed nvmf-ublk"; exit 1; }
[[ -x $stage$sbindir/nvmf-ublk ]] || { echo "FAIL: $sbindir/nvmf-ublk not installed"; exit 1; }
if command -v udevadm >/dev/null && udevadm verify --help >/dev/null 2>&1; then
  udevadm verify "$rules"
fi
echo "verified: $* and 60-nvmf-ublk.rules"
