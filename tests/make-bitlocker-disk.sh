#!/bin/sh
# Makes a disk image holding a real BitLocker-encrypted NTFS volume with the CrowdStrike tree, the
# way crates/cli/tests/bitlocker_fix.rs makes them, with independent tools only: a copy of a
# Windows-made BitLocker volume from the shared test set is opened read-write with dislocker
# (FUSE), mkntfs formats the decrypted file and an ntfs-3g mount of it gets the tree; the volume is
# placed at 1 MiB in an MBR or GPT disk (sfdisk), and the disk optionally converted to a dynamic
# VHD by qemu-img. The volume's metadata is Windows', its sectors were encrypted by dislocker.
#
#   tests/make-bitlocker-disk.sh OUTDIR [IMAGE [dos|gpt [raw|vhd]]]
#
# IMAGE is a volume of the archive (default bitlk-aes-xts-256), the layout defaults to gpt and the
# container to vhd. Writes OUTDIR/disk.img or OUTDIR/disk.vhd, and OUTDIR/keys with the image's
# facts from images.conf (RP=, PW=, ...): the keys a test unlocks with. The archive is GPL data,
# read from ../shared/testdata/bitlk at run time and never copied into the project.
#
# Deterministic where the tools allow: clocks frozen with libfaketime, fixed NTFS serial number,
# fixed disk identifiers, file contents from fixed seeds. qemu-img still gives a VHD a random
# footer UUID, so compare VHDs made by two runs by their contents (qemu-img convert to raw).
#
# Needs root (FUSE mounts): dislocker, ntfs-3g, fdisk, qemu-utils, faketime.
set -eu

out=${1:?usage: make-bitlocker-disk.sh OUTDIR [IMAGE [dos|gpt [raw|vhd]]]}
image=${2:-bitlk-aes-xts-256}
scheme=${3:-gpt}
container=${4:-vhd}
here=$(cd "$(dirname "$0")" && pwd)
# The shared test data lives beside the project, never in it.
archive="$here/../../shared/testdata/bitlk/bitlk-images.tar.xz"
if [ ! -f "$archive" ]; then
  echo "the BitLocker test set (shared/testdata/bitlk/bitlk-images.tar.xz) is not next to the project" >&2
  exit 3
fi
libfaketime=$(ls /usr/lib/*/faketime/libfaketime.so.1 /usr/lib/faketime/libfaketime.so.1 2>/dev/null | head -n1 || true)
[ -n "$libfaketime" ] || { echo "libfaketime not found: apt-get install -y faketime" >&2; exit 3; }
frozen() {
  LD_PRELOAD=$libfaketime FAKETIME="2024-07-19 04:09:00" TZ=UTC FAKETIME_DONT_FAKE_MONOTONIC=1 "$@"
}

mkdir -p "$out"
work=$(mktemp -d "$out/work.XXXXXX")
clear="$work/clear"
ntfs="$work/ntfs"
cleanup() {
  mountpoint -q "$ntfs" 2>/dev/null && umount "$ntfs"
  mountpoint -q "$clear" 2>/dev/null && umount "$clear"
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

tar -xJf "$archive" -C "$work" "bitlk-images/images.conf" "bitlk-images/$image.img"
sed -n "/^\[$image\]\$/,/^\[/p" "$work/bitlk-images/images.conf" | grep '=' > "$out/keys"
rp=$(sed -n 's/^RP=//p' "$out/keys")
if [ -n "$rp" ]; then key="-p$rp"; else key="-c"; fi

vol="$work/volume.img"
cp --sparse=always "$work/bitlk-images/$image.img" "$vol"
mkdir -p "$clear" "$ntfs"
dislocker-fuse -V "$vol" "$key" -- "$clear"
decrypted="$clear/dislocker-file"
# Windows keeps BitLocker's three metadata areas as files of the volume; mkntfs cannot know them
# and dislocker refuses writes into them. mkntfs puts $LogFile at the middle of the volume, which
# on the 128 MiB Elephant volumes is the second area: there the NTFS ends where the first area
# begins (a volume smaller than its partition, as Windows allows).
sectors=
case $image in
  *elephant*)
    first_area=$(python3 -c 'import sys
b=open(sys.argv[1],"rb").read(512)
print(min(int.from_bytes(b[0xB0+8*i:0xB8+8*i],"little") for i in range(3)))' "$vol")
    sectors=$((first_area / 512)) ;;
esac
# mkntfs warns that a file is no block device and assumes 512-byte sectors, as intended.
frozen mkntfs -F -Q -q -L Windows -p 2048 -H 255 -S 63 "$decrypted" $sectors 2>"$work/mkntfs.log" \
  || { cat "$work/mkntfs.log" >&2; exit 1; }
ntfslabel --new-serial=1234ABCD5678EF90 "$decrypted" >/dev/null
frozen ntfs-3g -o noatime "$decrypted" "$ntfs"

# File contents: SHAKE-256 of a fixed string (python3's hashlib), as the fixtures do.
put() { # path length seed-string [header-hex]
  mkdir -p "$(dirname "$ntfs/$1")"
  python3 -c 'import hashlib,sys
h=bytes.fromhex(sys.argv[3]); sys.stdout.buffer.write(h+hashlib.shake_256(sys.argv[2].encode()).digest(int(sys.argv[1])))' \
    "$2" "$3" "${4:-}" > "$ntfs/$1"
}
cs=Windows/System32/drivers/CrowdStrike
put "$cs/C-00000291-00000000-00000032.sys" 40000 faulty-291 aaaaaaaa01002301
put "$cs/C-00000292-00000000-00000001.sys" 12000 channel-292 aaaaaaaa01002301
put "$cs/csagent.sys" 150000 csagent 4d5a
put Windows/System32/hal.dll 90000 hal
umount "$ntfs"
umount "$clear"

size=$(stat -c %s "$vol")
disk="$work/disk.img"
truncate -s $((size + 2 * 1048576)) "$disk"
if [ "$scheme" = gpt ]; then
  printf 'label: gpt\nlabel-id: 6B1D4E2A-0F3C-4A57-9E21-3C5D7A8B9F10\nstart=2048, size=%s, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, uuid=1F2E3D4C-5B6A-4978-8695-A4B3C2D1E0F9\n' \
    $((size / 512)) | sfdisk -q "$disk"
else
  printf 'label: dos\nlabel-id: 0x4b414946\nstart=2048, size=%s, type=7\n' $((size / 512)) | sfdisk -q "$disk"
fi
dd if="$vol" of="$disk" bs=1M seek=1 conv=notrunc,sparse status=none

if [ "$container" = vhd ]; then
  rm -f "$out/disk.vhd"
  frozen qemu-img convert -f raw -O vpc -o subformat=dynamic "$disk" "$out/disk.vhd"
else
  rm -f "$out/disk.img"
  cp --sparse=always "$disk" "$out/disk.img"
fi
