#!/usr/bin/env python3
"""Build kaifuku's practice disks (small Windows-like disks for training) with real tools.

Usage: make-practice-disks.py [--keep-temp] OUTDIR

Three scenarios, each a small raw disk stored as OUTDIR/<scenario>.raw.gz (gzip -9 -n):

  gpt      GPT: ESP (FAT32), MSR, the Windows NTFS volume
  mbr      MBR: active "System Reserved" NTFS + the Windows NTFS volume (older servers)
  unclean  the gpt layout, crashed right after the faulty update (its creation only in the journal)

Partitioned by sfdisk, formatted by mkfs.vfat / mkntfs, populated through mtools and an ntfs-3g
(FUSE) mount, with clocks frozen by libfaketime, ids and contents fixed: two runs give the same
bytes (with the same tool versions, recorded in OUTDIR/manifest.json). Nothing here uses
kaifuku's own code. The helpers (mount, clock, partition script) are those of make-fixtures.py.

The unclean disk: its machine crashed right after the faulty 04:09 channel file arrived. The
Windows volume is populated up to that update (PRE); the file is created through ntfs-3g on a
copy (POST); tests/logwriter.py (written from docs/logfile-format.md, independent of kaifuku)
then makes the crashed volume: POST with the metadata the creation changed back at PRE's bytes,
and a journal in which the creation is committed and not yet flushed -- what the journal tests
build and ntfsrecover judges. Replaying it gives POST, which holds the faulty file.

Needs root (FUSE mounts). Debian packages: ntfs-3g fdisk dosfstools mtools faketime gzip.
"""

import argparse
import hashlib
import importlib.util
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("make_fixtures", os.path.join(HERE, "make-fixtures.py"))
mf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mf)
sys.path.insert(0, HERE)
import logwriter  # noqa: E402

KiB, MiB = mf.KiB, mf.MiB
blob = mf.blob


def content(head, size, *parts):
    """size bytes: head, then 256 pseudo-random bytes repeated (non-zero, but cheap to compress:
    the disks ship compressed with a page, so their file data must not cost much)."""
    unit = blob(256, *parts)
    body = unit * (size // 256 + 1)
    return (head + body)[:size]
run = mf.run
need = mf.need

T_MKFS = "2024-01-15 09:00:00"
T_INSTALL = "2024-01-15 09:30:00"
T_AGENT = "2024-03-04 11:20:00"
T_FAULTY = "2024-07-19 04:09:13"      # the faulty update: all zeros, as on many crashed machines
T_FIXED = "2024-07-19 05:27:41"       # the fixed update
T_POST = "2024-07-19 05:48:02"        # the minidump, written after the crash
CS_HEADER = mf.CS_HEADER
CS_DIR = mf.CS_DIR

FAULTY = "C-00000291-00000000-00000032.sys"
FIXED = "C-00000291-00000000-00000033.sys"


# Offsets and sizes in 512-byte sectors.
GPT_PARTS = [
    dict(n=1, start=2048, size=69632, type=mf.GPT_ESP, name="EFI system partition", fs="vfat",
         label="SYSTEM"),                      # 34 MiB: the least that FAT32 allows with 512 B clusters
    dict(n=2, start=71680, size=4096, type=mf.GPT_MSR, name="Microsoft reserved partition", fs=None),
    dict(n=3, start=75776, size=53248, type=mf.GPT_BASIC, name="Basic data partition", fs="ntfs",
         label="Windows", cluster=4096, content="windows"),
]
SCENARIOS = [
    dict(name="gpt", scheme="gpt", sector=512, disk=64 * MiB, parts=GPT_PARTS,
         note="GPT: ESP (FAT32), MSR, Windows NTFS"),
    # Each NTFS volume costs about 113 KiB compressed whatever it holds (gzip cannot shrink the
    # 128 KiB $UpCase table much), and long runs of zeros about 1 KiB per MiB: this disk is kept
    # small so that, with two NTFS volumes, it stays under 300 KiB compressed.
    dict(name="mbr", scheme="dos", sector=512, disk=20 * MiB,
         note="MBR: active System Reserved NTFS + Windows NTFS (older servers)",
         parts=[
             dict(n=1, start=2048, size=4096, type="7", bootable=True, fs="ntfs",
                  label="System Reserved", cluster=4096, content="sysres"),
             dict(n=2, start=6144, size=34816, type="7", fs="ntfs", label="Windows",
                  cluster=4096, content="windows"),
         ]),
    dict(name="unclean", scheme="gpt", sector=512, disk=64 * MiB, parts=GPT_PARTS, unclean_journal=3,
         note="GPT as 'gpt', crashed right after the faulty update: its creation committed in "
              "the journal, not flushed"),
]

SYSTEM32_FILES = ["ntoskrnl.exe", "hal.dll", "ntdll.dll", "kernel32.dll", "KernelBase.dll", "smss.exe",
                  "csrss.exe", "wininit.exe", "winlogon.exe", "services.exe", "lsass.exe", "svchost.exe",
                  "cmd.exe", "winload.efi", "winload.exe"]
CONFIG_FILES = ["SYSTEM", "SOFTWARE", "SAM", "SECURITY", "DEFAULT"]
DRIVERS = ["ACPI.sys", "disk.sys", "Ntfs.sys", "volmgr.sys", "partmgr.sys", "storport.sys", "stornvme.sys",
           "tcpip.sys", "netvsc.sys", "vmbus.sys", "storvsc.sys", "fltMgr.sys", "CLFS.SYS", "cng.sys"]
# Ordinary channel files (name, modified): other channels, other 291 versions never exist here.
CHANNELS = [
    ("C-00000290-00000000-00000007.sys", "2024-07-02 08:14:52"),
    ("C-00000290-00000000-00000008.sys", "2024-07-11 16:40:09"),
    ("C-00000285-00000000-00000123.sys", "2024-07-09 03:01:33"),
    ("C-00000289-00000000-00000044.sys", "2024-07-15 22:18:27"),
    ("C-00000303-00000000-00000017.sys", "2024-07-17 10:55:40"),
    ("C-00000372-00000001-00000002.sys", "2024-07-18 19:02:11"),
]


def windows_tree(pop, until_crash=False):
    """The Windows volume's tree. `until_crash`: stop where the faulty update arrives (the unclean
    disk's machine crashed right after it, so nothing later exists there)."""
    c = pop.clock
    c.set(T_INSTALL)
    for d in ["Windows/System32/config", "Windows/System32/drivers/etc", "Windows/Temp", "Windows/Minidump",
              "Users/Default", "Program Files/CrowdStrike", "Program Files/Common Files"]:
        pop.mkdir(d)
    for n in SYSTEM32_FILES:
        pop.file("Windows/System32/" + n, content(b"MZ\x90\x00", 1536, "practice", "sys32", n))
    for n in CONFIG_FILES:
        pop.file("Windows/System32/config/" + n, content(b"regf", 2048, "practice", "config", n))
    for n in DRIVERS:
        pop.file("Windows/System32/drivers/" + n, content(b"MZ\x90\x00", 1024, "practice", "drv", n))
    for n, data in [("hosts", mf.HOSTS), ("networks", mf.NETWORKS), ("protocol", mf.PROTOCOL)]:
        pop.file("Windows/System32/drivers/etc/" + n, data)
    pop.file("Users/Default/NTUSER.DAT", content(b"regf", 2048, "practice", "ntuser"))

    c.set(T_AGENT)
    pop.mkdir(CS_DIR)
    pop.file(CS_DIR + "/csagent.sys", content(b"MZ\x90\x00", 4096, "practice", "csagent"))
    pop.file("Program Files/CrowdStrike/CSFalconService.exe", content(b"MZ\x90\x00", 2048, "practice", "svc"))
    for name, when in sorted(CHANNELS, key=lambda x: x[1]):
        c.set(when)
        head = CS_HEADER[:6] + struct.pack("<H", int(name[2:10]))
        pop.file(CS_DIR + "/" + name, content(head, 1024 + 512 * (int(name[2:10]) % 5), "practice", "chan", name))
        pop.times(CS_DIR + "/" + name, when)
        pop.fsync(CS_DIR + "/" + name)
    # Decoys in the CrowdStrike directory that the rule must not match: another channel, the right
    # channel with another extension, a name one digit short.
    c.set("2024-07-18 23:10:00")
    pop.file(CS_DIR + "/C-00000292-00000000-00000001.sys", content(CS_HEADER, 2048, "practice", "decoy292"))
    pop.file(CS_DIR + "/C-00000291-00000000-00000035.dat", content(CS_HEADER, 1024, "practice", "decoydat"))
    pop.file(CS_DIR + "/C-0000291-00000000-00000032.sys", content(CS_HEADER, 1024, "practice", "decoyshort"))
    if until_crash:
        return

    # The two channel-291 files the rule matches.
    faulty_update(pop)
    c.set(T_FIXED)
    pop.file(CS_DIR + "/" + FIXED, content(CS_HEADER, 41028, "practice", "fixed291"))
    pop.times(CS_DIR + "/" + FIXED, T_FIXED)
    pop.fsync(CS_DIR + "/" + FIXED)  # write the record while the clock still shows this file's time

    c.set(T_POST)
    # The faulty file's name outside drivers\CrowdStrike (a copy an operator saved): must survive.
    pop.file("Windows/Temp/" + FAULTY, bytes(40795))
    pop.file("Windows/System32/drivers/" + FAULTY.replace(".sys", ".sys.bak"), bytes(4096))
    pop.file("Windows/Minidump/071924-10218-01.dmp", content(b"PAGEDU64", 4096, "practice", "dump"))


def faulty_update(pop):
    """The faulty channel file arrives (all zeros, as on many crashed machines)."""
    pop.clock.set(T_FAULTY)
    pop.file(CS_DIR + "/" + FAULTY, bytes(40795))
    pop.times(CS_DIR + "/" + FAULTY, T_FAULTY)
    pop.fsync(CS_DIR + "/" + FAULTY)  # write the record while the clock still shows this file's time


def sysres_tree(pop):
    pop.clock.set(T_INSTALL)
    pop.mkdir("Boot/en-US")
    pop.file("bootmgr", content(b"", 4096, "practice", "bootmgr"))
    pop.file("BOOTNXT", b"")
    pop.file("Boot/BCD", content(b"regf", 2048, "practice", "BCD"))
    pop.file("Boot/en-US/bootmgr.exe.mui", content(b"MZ\x90\x00", 1024, "practice", "mui"))


def build_ntfs(sc, part, work):
    vol = os.path.join(work, "%s.p%d.ntfs" % (sc["name"], part["n"]))
    with open(vol, "wb") as f:
        f.truncate(part["size"] * sc["sector"])
    run(["mkntfs", "-F", "-Q", "-q", "-s", str(sc["sector"]), "-c", str(part["cluster"]),
         "-p", str(part["start"]), "-H", "255", "-S", "63", "-L", part["label"], vol],
        env=mf.frozen_env(T_MKFS))
    run(["ntfslabel", "--new-serial=" + mf.det_hex(8, "practice", sc["name"], str(part["n"]), "serial"), vol])
    mnt = os.path.join(work, "mnt-%s-%d" % (sc["name"], part["n"]))
    clock = mf.Clock(os.path.join(work, "clock-%s-%d" % (sc["name"], part["n"])), T_INSTALL)
    crashed = sc.get("unclean_journal") == part["n"]
    with mf.NtfsMount(vol, mnt, ro=False, clock=clock, logfile=vol + ".ntfs-3g.log"):
        pop = mf.Populator(mnt, clock)
        if part["content"] == "windows":
            windows_tree(pop, until_crash=crashed)
        else:
            sysres_tree(pop)
    if crashed:
        # The crash: the faulty update's creation is made on a copy (POST); logwriter then gives
        # POST with the metadata it changed back at the earlier bytes and a journal in which the
        # creation is committed, as Windows leaves a volume it had no time to flush.
        pre = vol + ".pre"
        os.replace(vol, pre)
        shutil.copyfile(pre, vol + ".post")
        with mf.NtfsMount(vol + ".post", mnt, ro=False, clock=clock, logfile=vol + ".ntfs-3g.log"):
            faulty_update(mf.Populator(mnt, clock))
        try:
            logwriter.build(pre, vol + ".post", vol)
        except logwriter.Unsupported as e:
            raise mf.FixtureError("logwriter cannot describe the faulty update's creation: %s" % e)
        os.unlink(pre)
        os.unlink(vol + ".post")
    os.rmdir(mnt)
    return vol


def build_esp(sc, part, work):
    vol = os.path.join(work, "%s.p%d.vfat" % (sc["name"], part["n"]))
    with open(vol, "wb") as f:
        f.truncate(part["size"] * sc["sector"])
    run(["mkfs.vfat", "-F", "32", "-S", str(sc["sector"]), "-s", "1", "-h", str(part["start"]),
         "-n", part["label"], "-i", mf.det_hex(4, "practice", sc["name"], str(part["n"]), "volid"), vol],
        env=mf.frozen_env(T_MKFS))
    env = mf.frozen_env(T_INSTALL)
    env["MTOOLS_SKIP_CHECK"] = "1"
    for d in ["::/EFI", "::/EFI/Microsoft", "::/EFI/Microsoft/Boot", "::/EFI/Microsoft/Boot/en-US",
              "::/EFI/Boot"]:
        run(["mmd", "-i", vol, d], env=env)
    src = os.path.join(work, "esp-src")
    os.makedirs(src, exist_ok=True)
    files = [("EFI/Microsoft/Boot/bootmgfw.efi", content(b"MZ", 2048, "practice", "bootmgfw")),
             ("EFI/Microsoft/Boot/BCD", content(b"regf", 2048, "practice", "espbcd")),
             ("EFI/Microsoft/Boot/en-US/bootmgfw.efi.mui", content(b"MZ", 1024, "practice", "mui2")),
             ("EFI/Boot/bootx64.efi", content(b"MZ", 2048, "practice", "bootmgfw"))]
    for i, (rel, data) in enumerate(files):
        p = os.path.join(src, "f%d" % i)
        with open(p, "wb") as f:
            f.write(data)
        os.utime(p, (1705311000, 1705311000))
        run(["mcopy", "-m", "-i", vol, p, "::/" + rel], env=env)
    shutil.rmtree(src)
    return vol


def sfdisk_script(sc):
    if sc["scheme"] == "gpt":
        lines = ["label: gpt", "label-id: " + mf.det_uuid("practice", sc["name"], "disk"), "unit: sectors",
                 "sector-size: %d" % sc["sector"], ""]
    else:
        lines = ["label: dos", "label-id: 0x" + mf.det_hex(4, "practice", sc["name"], "disk"), "unit: sectors", ""]
    for p in sc["parts"]:
        f = ["start=%d" % p["start"], "size=%d" % p["size"], "type=%s" % p["type"]]
        if sc["scheme"] == "gpt":
            f += ["uuid=" + mf.det_uuid("practice", sc["name"], str(p["n"])), 'name="%s"' % p["name"]]
        elif p.get("bootable"):
            f.append("bootable")
        lines.append(", ".join(f))
    return "\n".join(lines) + "\n"


def build_scenario(sc, work):
    img = os.path.join(work, sc["name"] + ".raw")
    vols = {}
    for part in sc["parts"]:
        if part["fs"] == "ntfs":
            vols[part["n"]] = build_ntfs(sc, part, work)
        elif part["fs"] == "vfat":
            vols[part["n"]] = build_esp(sc, part, work)
    with open(img, "wb") as f:
        f.truncate(sc["disk"])
    run(["sfdisk", "-q", "--no-reread", "--no-tell-kernel", img], input=sfdisk_script(sc).encode())
    for part in sc["parts"]:
        if part["n"] in vols:
            mf.sparse_copy(vols[part["n"]], img, dst_off=part["start"] * sc["sector"])
            os.unlink(vols[part["n"]])
    return img


def gzip_n(src, dst):
    """gzip -9 -n: no name and no time in the header, so the bytes depend on the content only."""
    with open(src, "rb") as f, open(dst, "wb") as g:
        subprocess.run(["gzip", "-9", "-n", "-c"], stdin=f, stdout=g, check=True)


def sha256(path):
    return mf.sha256_file(path)


def tool_versions():
    def all_lines(cmd):
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        return p.stdout.decode("utf-8", "replace").strip().splitlines()

    def first_line(cmd):
        return (all_lines(cmd) or [""])[0]
    mkntfs = next((l for l in run(["mkntfs", "--version"], ok=(0, 1)).splitlines() if "mkntfs" in l), "")
    return {
        "mkntfs": mkntfs.strip(),
        "ntfs-3g": first_line(["ntfs-3g", "--version"]),
        "mkfs.vfat": next((l for l in all_lines(["mkfs.vfat", "--help"]) if l.startswith("mkfs.fat ")), ""),
        "mtools": first_line(["mtools", "--version"]),
        "sfdisk": first_line(["sfdisk", "--version"]),
        "gzip": first_line(["gzip", "--version"]),
    }


REQUIRED = ["mkntfs", "ntfslabel", "ntfs-3g", "mkfs.vfat", "mmd", "mcopy", "sfdisk", "gzip", "umount"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--keep-temp", action="store_true", help="keep the work directory (raw images) afterwards")
    a = ap.parse_args()
    missing = [t for t in REQUIRED if shutil.which(t) is None]
    if missing:
        print("missing tools: %s\napt-get install -y ntfs-3g fdisk dosfstools mtools faketime gzip"
              % " ".join(missing), file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("must run as root (FUSE mounts)", file=sys.stderr)
        return 2
    mf.LIBFAKETIME = mf.find_libfaketime()
    outdir = os.path.abspath(a.outdir)
    os.makedirs(outdir, exist_ok=True)
    work = tempfile.mkdtemp(prefix=".practice-", dir=outdir)
    try:
        manifest = {"generator": "tests/make-practice-disks.py", "tools": tool_versions(), "scenarios": []}
        for sc in SCENARIOS:
            img = build_scenario(sc, work)
            gz = os.path.join(work, sc["name"] + ".raw.gz")
            gzip_n(img, gz)
            manifest["scenarios"].append(dict(
                name=sc["name"], file=sc["name"] + ".raw.gz", note=sc["note"],
                virtual_size=os.path.getsize(img), raw_sha256=sha256(img),
                compressed_size=os.path.getsize(gz), compressed_sha256=sha256(gz)))
            mf.log("  built %-8s %3d MiB -> %7d bytes compressed" % (sc["name"], os.path.getsize(img) // MiB,
                                                                    os.path.getsize(gz)))
        for s in manifest["scenarios"]:
            os.replace(os.path.join(work, s["file"]), os.path.join(outdir, s["file"]))
        tmp = os.path.join(work, "manifest.json")
        with open(tmp, "w") as f:
            json.dump(manifest, f, indent=2)
            f.write("\n")
        os.replace(tmp, os.path.join(outdir, "manifest.json"))
    except mf.FixtureError as e:
        print("\nPRACTICE DISK GENERATION FAILED:\n%s" % e, file=sys.stderr)
        return 1
    except Exception:
        traceback.print_exc()
        return 1
    finally:
        mf.cleanup_leftovers()
        if a.keep_temp:
            print("work directory kept: %s" % work, file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
