#!/usr/bin/env bash
# bootlab-golden.sh OUT.img [--label TEXT] [--size 256M]
#
# Builds the boot lab's golden image (issue 15): a raw disk with an MBR and one
# bootable ext4 partition holding extlinux, a Debian kernel, an initramfs that
# logs in to the iSCSI LUN the iBFT names and switch_roots to it, and a tiny
# busybox root whose init prints machine-readable `LUNKIT-GUEST k=v` lines on
# the serial console (test/helpers/bootlab-vm.ts parses them).
#
# The kernel, busybox-static and iscsistart come out of Debian .debs fetched
# with `apt-get download` and unpacked with `dpkg-deb -x` into a cache
# (LUNKIT_BOOTLAB_CACHE, default /var/cache/lunkit-bootlab): nothing is
# installed on the host but the build tools (sfdisk, extlinux, depmod, ...).
# A second run reuses the unpacked packages and the initramfs.
#
# Runs as root (loop device for extlinux). Every loop device and mount point is
# released on exit, also when the build fails.
set -euo pipefail

usage() { echo "usage: $0 OUT.img [--label TEXT] [--size 256M]" >&2; exit 2; }

out=''
label='golden'
size='256M'
while [ $# -gt 0 ]; do
  case "$1" in
    --label) [ $# -ge 2 ] || usage; label=$2; shift 2 ;;
    --size) [ $# -ge 2 ] || usage; size=$2; shift 2 ;;
    -h|--help) usage ;;
    -*) echo "bootlab-golden: unknown option $1" >&2; usage ;;
    *) [ -z "$out" ] || usage; out=$1; shift ;;
  esac
done
[ -n "$out" ] || usage
# The label goes into /golden-id and onto a `key=value` console line that the
# test splits on spaces, so keep it one word.
case "$label" in *[!A-Za-z0-9._:-]*|'') echo "bootlab-golden: --label must match [A-Za-z0-9._:-]+" >&2; exit 2 ;; esac
if [ "$(id -u)" != 0 ]; then echo "bootlab-golden: must run as root (loop device, apt-get)" >&2; exit 1; fi

say() { echo "bootlab-golden: $*" >&2; }
t_start=$(date +%s.%N)
elapsed() { awk -v a="$t_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

cache=${LUNKIT_BOOTLAB_CACHE:-/var/cache/lunkit-bootlab}
script_sha=$(sha256sum "$0" | cut -c1-16)
mkdir -p "$cache/debs"

# --- host tools -------------------------------------------------------------
# command -> Debian package providing it. apt lists are refreshed only when
# something is missing (a fresh CI machine), never on a warm run.
declare -A tool_pkg=(
  [sfdisk]=fdisk [extlinux]=extlinux [depmod]=kmod [mkfs.ext4]=e2fsprogs
  [cpio]=cpio [openssl]=openssl [losetup]=mount [dpkg-deb]=dpkg [gzip]=gzip
)
missing=()
for t in "${!tool_pkg[@]}"; do command -v "$t" >/dev/null || missing+=("${tool_pkg[$t]}"); done
mbr_bin=/usr/lib/syslinux/mbr/mbr.bin
[ -f "$mbr_bin" ] || missing+=(syslinux-common)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing build tools: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- packages: kernel, busybox-static, iscsistart ---------------------------
# apt-get download into the cache; apt's sandbox user cannot write there, so
# download as root in a private directory (no "unsandboxed" warning noise).
fetch_debs() {
  local need=() p
  for p in "$@"; do
    compgen -G "$cache/debs/${p}_*.deb" >/dev/null || need+=("$p")
  done
  [ ${#need[@]} -gt 0 ] || return 0
  say "downloading ${need[*]}"
  if ! (cd "$cache/debs" && apt-get download -o APT::Sandbox::User=root "${need[@]}" >/dev/null 2>&1); then
    apt-get update -qq
    (cd "$cache/debs" && apt-get download -o APT::Sandbox::User=root "${need[@]}" >/dev/null)
  fi
}

# linux-image-amd64 is a metapackage: its one Depends is the real kernel. When
# the apt lists are gone (cleaned machine) fall back to a kernel already cached.
kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }' || true)
if [ -z "$kpkg" ]; then
  kpkg=$(cd "$cache/debs" && ls linux-image-[0-9]*-amd64_*.deb 2>/dev/null | sed 's/_.*//' | sort -V | tail -1 || true)
fi
if [ -z "$kpkg" ]; then
  apt-get update -qq
  kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
fi
[ -n "$kpkg" ] || { say "cannot resolve linux-image-amd64"; exit 1; }
kver=${kpkg#linux-image-}
pkgs=("$kpkg" busybox-static open-iscsi libopeniscsiusr)
fetch_debs "${pkgs[@]}"

# One tree holds all four packages, unpacked once; a stamp names exactly which
# .deb files it was made from, so a kernel update re-unpacks.
tree="$cache/tree-$kver"
deb_list=$(for p in "${pkgs[@]}"; do ls "$cache/debs/${p}"_*.deb | sort -V | tail -1; done)
if [ ! -f "$tree/.stamp" ] || [ "$(cat "$tree/.stamp")" != "$deb_list" ]; then
  say "unpacking packages into $tree"
  rm -rf "$tree" "$tree.tmp"
  mkdir -p "$tree.tmp"
  while read -r d; do dpkg-deb -x "$d" "$tree.tmp"; done <<<"$deb_list"
  # The .deb ships no modules.dep (postinst runs depmod); make it here.
  depmod -b "$tree.tmp" "$kver"
  printf '%s' "$deb_list" >"$tree.tmp/.stamp"
  mv "$tree.tmp" "$tree"
fi
moddir="$tree/lib/modules/$kver"
busybox="$tree/bin/busybox"
iscsistart="$tree/sbin/iscsistart"
[ -x "$busybox" ] && [ -x "$iscsistart" ] && [ -f "$tree/boot/vmlinuz-$kver" ] || { say "cache $tree is incomplete; remove it"; exit 1; }

# --- scratch space, cleaned on every exit ------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/bootlab-golden.XXXXXX")
loopdev=''
mnt="$work/mnt"
cleanup() {
  local rc=$?
  if mountpoint -q "$mnt" 2>/dev/null; then umount "$mnt" || umount -l "$mnt" || true; fi
  if [ -n "$loopdev" ]; then losetup -d "$loopdev" 2>/dev/null || true; fi
  rm -rf "$work"
  [ -n "$out" ] && rm -f "$out.tmp"
  [ $rc -eq 0 ] || say "failed (exit $rc) after $(elapsed) s"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Busybox applets as symlinks: `busybox --install` wants to run inside the
# target root, so list them and link by hand.
install_busybox() {
  local root=$1 a
  mkdir -p "$root/bin" "$root/sbin"
  cp "$busybox" "$root/bin/busybox"
  for a in $("$busybox" --list); do
    [ -e "$root/bin/$a" ] || ln -s busybox "$root/bin/$a"
  done
}

# --- initramfs (label-independent: cached per kernel and script version) ------
# Modules in load order: each one after its modules.dep dependencies.
# crc32c_generic is listed by hand: ext4 (metadata_csum) asks the crypto API
# for "crc32c" by name, which would need a modprobe helper the initramfs lacks;
# crc32c-intel is left out because TCG's default CPU has no SSE4.2.
want_mods=(virtio_pci virtio_net e1000 crc32c_generic iscsi_tcp iscsi_ibft sd_mod ext4)
declare -A mod_path=() mod_done=()
while IFS=: read -r path deps; do
  b=${path##*/}; mod_path[${b%.ko}]=$path
done <"$moddir/modules.dep"
load_order=()
add_mod() { # name or path relative to the module dir
  local m=${1##*/} path dep
  m=${m%.ko}
  [ -z "${mod_done[$m]:-}" ] || return 0
  path=${mod_path[$m]:-}
  if [ -z "$path" ]; then
    # Built into this kernel (modules.builtin) is fine, anything else is a typo.
    grep -q "/$m.ko\$" "$moddir/modules.builtin" && return 0
    say "no module $m in $kver"; exit 1
  fi
  mod_done[$m]=1
  for dep in $(awk -F': *' -v p="$path" '$1 == p { print $2 }' "$moddir/modules.dep"); do add_mod "$dep"; done
  load_order+=("$path")
}
for m in "${want_mods[@]}"; do add_mod "$m"; done

initrd="$cache/initrd-$kver-$script_sha.img"
if [ ! -f "$initrd" ]; then
  # Initramfs images of older script versions are of no further use.
  rm -f "$cache"/initrd-*.img
  say "building initramfs ($kver, ${#load_order[@]} modules)"
  ir="$work/initramfs"
  install_busybox "$ir"
  mkdir -p "$ir"/{dev,proc,sys,root,run,tmp,etc/iscsi,var/lock,lib/modules}
  for p in "${load_order[@]}"; do
    mkdir -p "$ir/lib/modules/$(dirname "$p")"
    cp "$moddir/$p" "$ir/lib/modules/$p"
  done
  printf '%s\n' "${load_order[@]}" >"$ir/etc/modules.load"
  # iscsistart and the shared libraries ldd finds for it (libopeniscsiusr from
  # the unpacked tree, the rest from the host, which is the same Debian).
  cp "$iscsistart" "$ir/bin/iscsistart"
  libpath="$tree/lib/x86_64-linux-gnu:$tree/usr/lib/x86_64-linux-gnu"
  mkdir -p "$ir/lib/x86_64-linux-gnu" "$ir/lib64"
  LD_LIBRARY_PATH=$libpath ldd "$iscsistart" | awk '/=>/ { print $1, $3 } /^\t\/lib/ { print "interp", $1 }' |
    while read -r name lib; do
      [ -f "$lib" ] || { say "iscsistart: library $name not found"; exit 1; }
      if [ "$name" = interp ]; then cp -L "$lib" "$ir$lib"; else cp -L "$lib" "$ir/lib/x86_64-linux-gnu/$name"; fi
    done
  # iscsistart -b takes everything (initiator name, target, LUN, CHAP) from the
  # iBFT; the placeholder only covers code paths that read the default file.
  echo 'InitiatorName=iqn.2026-12.org.lunkit:unset' >"$ir/etc/iscsi/initiatorname.iscsi"
  cat >"$ir/init" <<'INIT'
#!/bin/sh
# lunkit boot-lab initramfs: iBFT -> network -> iSCSI login -> switch_root.
export PATH=/bin:/sbin
say() { echo "lunkit-initramfs: $*"; }
fail() { echo "lunkit-initramfs: FAILED: $*"; sleep 2; poweroff -f; }
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
say "loading modules"
while read -r m; do insmod "/lib/modules/$m" 2>/dev/null || say "insmod $m failed"; done </etc/modules.load

ibft=/sys/firmware/ibft
[ -d $ibft/initiator ] || fail "no iBFT (boot through iPXE sanboot)"
say "iBFT initiator $(cat $ibft/initiator/initiator-name)"

# The NIC the firmware booted from: match the iBFT's MAC against the netdevs
# (the driver may take a moment to register it).
mac=$(cat $ibft/ethernet0/mac)
ip=$(cat $ibft/ethernet0/ip-addr)
mask=$(cat $ibft/ethernet0/subnet-mask 2>/dev/null || echo 255.255.255.0)
gw=$(cat $ibft/ethernet0/gateway 2>/dev/null || true)
prefix=0
for o in $(echo "$mask" | tr . ' '); do
  while [ "$o" -gt 0 ]; do prefix=$((prefix + (o & 1))); o=$((o >> 1)); done
done
dev=''
i=0
while [ -z "$dev" ] && [ $i -lt 50 ]; do
  for n in /sys/class/net/*; do
    [ "$(cat "$n/address")" = "$mac" ] && dev=${n##*/}
  done
  [ -n "$dev" ] || { sleep 0.2; i=$((i + 1)); }
done
[ -n "$dev" ] || fail "no network interface with MAC $mac"
say "network $dev $ip/$prefix (mac $mac)"
ip link set lo up
ip link set "$dev" up
ip addr add "$ip/$prefix" dev "$dev"
case "$gw" in ''|0.0.0.0) ;; *) ip route add default via "$gw" 2>/dev/null || true ;; esac

say "iscsistart -b: logging in to $(cat $ibft/target0/target-name 2>/dev/null) at $(cat $ibft/target0/ip-addr 2>/dev/null):$(cat $ibft/target0/port 2>/dev/null) lun $(cat $ibft/target0/lun 2>/dev/null)"
tries=0
until iscsistart -b; do
  tries=$((tries + 1))
  [ $tries -lt 5 ] || fail "iscsistart -b"
  sleep 1
done
i=0
while [ ! -b /dev/sda1 ]; do
  i=$((i + 1))
  [ $i -lt 150 ] || fail "no /dev/sda1 after login"
  sleep 0.2
done
say "mounting /dev/sda1"
mount -t ext4 -o rw /dev/sda1 /root || fail "mount /dev/sda1"
[ -x /root/sbin/init ] || fail "no /sbin/init on the LUN"
for d in proc sys dev; do mount --move /$d /root/$d; done
say "switch_root"
exec switch_root /root /sbin/init
INIT
  chmod 755 "$ir/init"
  (cd "$ir" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1) >"$initrd.tmp"
  mv "$initrd.tmp" "$initrd"
fi

# --- root filesystem ----------------------------------------------------------
say "building root filesystem (label $label)"
root="$work/root"
install_busybox "$root"
mkdir -p "$root"/{dev,proc,sys,tmp,run,persist,boot/extlinux}
printf '%s\n' "$label" >"$root/golden-id"
# 4 MiB derived from the label: AES-CTR keystream keyed by it, so equal labels
# give equal bytes and different labels different checksums.
# (Finite input: an endless one would end in SIGPIPE, which pipefail reports.)
head -c $((4 * 1024 * 1024)) /dev/zero |
  openssl enc -aes-256-ctr -nosalt -pbkdf2 -pass "pass:lunkit-golden:$label" >"$root/golden-data.bin"
cat >"$root/sbin/init" <<'GUESTINIT'
#!/bin/sh
# lunkit boot-lab guest: report, record this boot in /persist, obey the console.
export PATH=/bin:/sbin
# The initramfs moved /proc, /sys and /dev here; mount them only when booted
# some other way (Debian's busybox-static has no `mountpoint` applet).
[ -e /proc/self ] || mount -t proc proc /proc
[ -d /sys/kernel ] || mount -t sysfs sysfs /sys
[ -e /dev/null ] || mount -t devtmpfs devtmpfs /dev
iqn=$(cat /sys/firmware/ibft/initiator/initiator-name 2>/dev/null || echo unknown)
sha() { sha256sum /golden-data.bin | cut -d' ' -f1; }
echo "LUNKIT-GUEST initiator=$iqn golden=$(cat /golden-id) golden_sha=$(sha)"
files=$(ls /persist)
count=$(ls /persist | wc -l)
echo "LUNKIT-GUEST files=$(echo ${files:-none})"
echo "$iqn" >"/persist/boot-$((count + 1))"
sync
while :; do
  echo "LUNKIT-GUEST waiting"
  line=''
  read -t 120 -r line || line=off
  case "$line" in
    *check*)
      sync
      echo 3 >/proc/sys/vm/drop_caches
      echo "LUNKIT-GUEST golden_sha=$(sha)"
      ;;
    *off*) break ;;
  esac
done
echo "LUNKIT-GUEST poweroff"
sync
mount -o remount,ro / || true
poweroff -f
GUESTINIT
chmod 755 "$root/sbin/init"
cat >"$root/boot/extlinux/extlinux.conf" <<EOF
DEFAULT lunkit
PROMPT 0
TIMEOUT 0
LABEL lunkit
  LINUX /boot/vmlinuz
  INITRD /boot/initrd.img
  APPEND console=ttyS0,115200 loglevel=4 panic=5
EOF

# --- disk image ---------------------------------------------------------------
# MBR, one bootable Linux partition from 1 MiB to the end. The filesystem is
# made straight from the root directory (mke2fs -d) at that offset; extlinux
# needs it mounted, so a loop device with the same offset follows.
part_off=$((1024 * 1024))
truncate -s 0 "$out.tmp"
truncate -s "$size" "$out.tmp"
total=$(stat -c %s "$out.tmp")
[ "$total" -ge $((32 * 1024 * 1024)) ] || { say "--size must be at least 32M"; exit 2; }
printf 'label: dos\nstart=2048, type=83, bootable\n' | sfdisk -q "$out.tmp"
part_bytes=$(( ($(sfdisk -l -o Sectors "$out.tmp" | tail -1 | tr -d ' ')) * 512 ))
# Features syslinux 6.04 cannot read are left out (64bit block numbers, the
# checksum seed, the orphan file); ext4 without them is still ext4.
mkfs.ext4 -q -F -L lunkit-golden -O ^64bit,^metadata_csum_seed -E "offset=$part_off" \
  -d "$root" "$out.tmp" $((part_bytes / 1024))k
loopdev=$(losetup -f --show -o "$part_off" --sizelimit "$part_bytes" "$out.tmp")
mkdir -p "$mnt"
mount -t ext4 "$loopdev" "$mnt"
# Kernel and initramfs are copied through the mount, not by mke2fs -d: -d
# turns every all-zero block into a hole, and syslinux reads a file with
# holes (and so an extent tree of depth 1) as "I/O error".
cp --sparse=never "$tree/boot/vmlinuz-$kver" "$mnt/boot/vmlinuz"
cp --sparse=never "$initrd" "$mnt/boot/initrd.img"
extlinux --install "$mnt/boot/extlinux" >/dev/null 2>&1 || { extlinux --install "$mnt/boot/extlinux"; exit 1; }
umount "$mnt"
losetup -d "$loopdev"
loopdev=''
# extlinux asks the loop device where the partition starts and may get 0:
# write the partition's LBA into the boot sector's "hidden sectors" field
# (offset 0x1c) so ldlinux finds its own sectors on the whole disk.
printf '\x00\x08\x00\x00' | dd of="$out.tmp" bs=1 seek=$((part_off + 0x1c)) conv=notrunc status=none
dd if="$mbr_bin" of="$out.tmp" bs=440 count=1 conv=notrunc status=none
mv "$out.tmp" "$out"
say "wrote $out ($size, kernel $kver, label $label, golden_sha $(sha256sum "$root/golden-data.bin" | cut -d' ' -f1)) in $(elapsed) s"
