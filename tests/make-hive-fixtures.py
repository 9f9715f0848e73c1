#!/usr/bin/env python3
"""Registry hives made by hivex, and a Windows volume holding them, for the hive reader's tests.

    python3 tests/make-hive-fixtures.py [--hives-only] OUTDIR

Writes into OUTDIR (replacing it):

  SOFTWARE            a SOFTWARE hive: `Microsoft\\Windows NT\\CurrentVersion` with
                      `CurrentBuildNumber` = "17763" (REG_SZ, UTF-16LE), `ProductName`,
                      `CurrentMajorVersionNumber` (REG_DWORD) and more; 1300 sibling keys under
                      `Microsoft`, 40 values in `CurrentVersion`, key names in UTF-16 (not Latin-1).
                      Clean (primary sequence = secondary).
  SYSTEM              a SYSTEM hive (`Select`, `ControlSet001\\Control\\...`), left as a crash
                      leaves it: dirty (see below).
  SYSTEM.clean        the same hive before it was made dirty.
  Blob.hivex          the data of SOFTWARE's `Microsoft\\Cryptography` value `Blob` (40000 bytes, more
                      than a big-data segment; hivex keeps it in one cell), as hivex reads it back.
  expected.json       what hivexget / hivexsh read back from the hives (never the recipe), and the
                      header fields read with this script's own struct reads.
  win-hives.raw       a bare NTFS volume (mkntfs, filled through an ntfs-3g mount) with
                      `Windows\\System32\\config\\SOFTWARE` and `SYSTEM` (the dirty one), their
                      `.LOG1`/`.LOG2` files, and `config\\TxR` populated the way Windows leaves it
                      (`{GUID}.TxR.0.regtrans-ms` ... `.TxR.2.regtrans-ms`, `{GUID}.TxR.blf`), plus
                      the CrowdStrike directory with the 04:09 channel file.
  win-hives-broken.raw  the same layout, with SOFTWARE cut after its first 8 KiB and no SYSTEM
                      (the build cannot be read: the registry transaction-log rules skip it).
  SOFTWARE-9600       a SOFTWARE hive made the same way with `CurrentBuildNumber` = "9600"
                      (Windows Server 2012 R2), older than the transaction-log rules' gate.
  win-hives-9600.raw  the same layout as win-hives.raw, with SOFTWARE-9600 as its SOFTWARE.

The files in config\\TxR are Hidden and System (with Archive), as Windows leaves them: set
through ntfs-3g's `system.ntfs_attrib_be` extended attribute, and read back the same way.

With --hives-only, only the hives and expected.json (no root or ntfs-3g needed).

How the hives are made. hivex cannot create a hive from nothing (its own test hive `minimal` is a
hand-made blob), so this script writes the empty starting hive itself from the documented regf
layout: the 4 KiB base block, one 4 KiB hive bin holding the root key (`nk`) and its security key
(`sk`). Every other key and value is added by hivex (python3-hivex: `node_add_child`,
`node_set_values`, `commit`), which also rewrites the base block (sequence numbers, checksum).

hivex writes every subkey list as `lh` and never splits a long one into an index (`ri`), which
Windows does once a list grows past what one cell holds. So, after hivex, this script turns the
1300-entry `lh` list of `Microsoft` into an `ri` over two `lh` lists (the second half moved to a
new hive bin appended at the end; each element keeps hivex's hash), and updates the base block's
hive bins size and checksum. hivexsh must then list exactly the same subkeys as before.

Dirty SYSTEM: Windows raises the primary sequence number before it writes a hive and sets the
secondary to match after the write; a crash in between leaves primary = secondary + 1 with a valid
header checksum. hivex writes clean hives only, so this script patches those two header fields
(and the checksum) on SYSTEM: the state a crash leaves, not a state kaifuku writes.

Root (FUSE mounts), ntfs-3g, libhivex-bin and python3-hivex are needed; without them the script
exits 77 with the reason. Clocks are frozen with libfaketime and hive timestamps fixed, so two runs
give the same bytes.
"""

import glob
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import time

# python3-hivex is installed for Debian's Python; a different python3 first on PATH lacks it.
try:
    import hivex  # noqa: E402
except ImportError:
    if os.path.exists("/usr/bin/python3") and os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3") \
            and not os.environ.get("KAIFUKU_HIVE_REEXEC"):
        os.environ["KAIFUKU_HIVE_REEXEC"] = "1"
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    hivex = None

CS = "Windows/System32/drivers/CrowdStrike"
CONFIG = "Windows/System32/config"
N032 = "C-00000291-00000000-00000032.sys"
TXR_GUID = "{6f0d1c3e-8d4a-11ef-9a3b-000d3a1f2b4c}"
# FILE_ATTRIBUTE_HIDDEN | FILE_ATTRIBUTE_SYSTEM | FILE_ATTRIBUTE_ARCHIVE, as on Windows' TxR files.
TXR_ATTRIBUTES = 0x02 | 0x04 | 0x20
HBIN = 4096
# 2024-07-19 04:09:13 UTC as a FILETIME: every timestamp hivex or this script writes.
FILETIME = (1721362153 + 11644473600) * 10_000_000


def skip(why):
    print("SKIPPED make-hive-fixtures: %s" % why)
    sys.exit(77)


def run(cmd, env=None, check=True):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    out = p.stdout.decode("utf-8", "replace")
    if check and p.returncode:
        raise SystemExit("%s failed (%d): %s" % (" ".join(cmd), p.returncode, out))
    return p.returncode, out


def clock(when):
    lft = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1") + glob.glob("/usr/lib/faketime/libfaketime.so.1"))
    return dict(os.environ, LD_PRELOAD=lft[0], FAKETIME=when, TZ="UTC", FAKETIME_DONT_FAKE_MONOTONIC="1")


def shake(tag, n):
    return hashlib.shake_256(tag.encode()).digest(n)


# ---------------------------------------------------------------------------------------------
# The empty starting hive (regf layout: base block, one hive bin, root nk + sk)

def xor32(block):
    c = 0
    for (w,) in struct.iter_unpack("<I", block[:508]):
        c ^= w
    return c


def reseal(header):
    struct.pack_into("<I", header, 508, xor32(header))


def cell(payload):
    size = (4 + len(payload) + 7) & ~7
    return struct.pack("<i", -size) + payload + b"\0" * (size - 4 - len(payload))


def security_descriptor():
    # Self-relative: owner BUILTIN\Administrators, group SYSTEM, a DACL granting Everyone KEY_READ.
    owner = bytes([1, 2, 0, 0, 0, 0, 0, 5]) + struct.pack("<II", 32, 544)
    group = bytes([1, 1, 0, 0, 0, 0, 0, 5]) + struct.pack("<I", 18)
    everyone = bytes([1, 1, 0, 0, 0, 0, 0, 1]) + struct.pack("<I", 0)
    ace = struct.pack("<BBHI", 0, 2, 8 + len(everyone), 0x20019) + everyone
    acl = struct.pack("<BBHHH", 2, 0, 8 + len(ace), 1, 0) + ace
    off_owner = 20
    off_group = off_owner + len(owner)
    off_dacl = off_group + len(group)
    head = struct.pack("<BBHIIII", 1, 0, 0x8004, off_owner, off_group, 0, off_dacl)
    return head + owner + group + acl


def empty_hive(root_name, file_name):
    name = root_name.encode("ascii")
    root_at = 0x20
    nk_len = (4 + 76 + len(name) + 7) & ~7
    sk_at = root_at + nk_len
    nk = struct.pack("<2sHQIIIIIIIIIIIIIIIHH", b"nk", 0x2C, FILETIME, 0, 0, 0, 0, 0xFFFFFFFF, 0xFFFFFFFF,
                     0, 0xFFFFFFFF, sk_at, 0xFFFFFFFF, 0, 0, 0, 0, 0, len(name), 0) + name
    sd = security_descriptor()
    sk = struct.pack("<2sHIIII", b"sk", 0, sk_at, sk_at, 1, len(sd)) + sd
    cells = cell(nk) + cell(sk)
    free = HBIN - 32 - len(cells)
    cells += struct.pack("<i", free) + b"\0" * (free - 4)
    hbin = struct.pack("<4sIIIIQI", b"hbin", 0, HBIN, 0, 0, FILETIME, 0) + cells
    header = bytearray(4096)
    struct.pack_into("<4sIIQIIIIII", header, 0, b"regf", 1, 1, FILETIME, 1, 5, 0, 1, root_at, HBIN)
    struct.pack_into("<I", header, 44, 1)
    fname = file_name.encode("utf-16-le")
    header[48:48 + len(fname)] = fname
    reseal(header)
    assert len(hbin) == HBIN
    return bytes(header) + hbin


# ---------------------------------------------------------------------------------------------
# Filling the hives with hivex

def sz(text):
    return {"t": 1, "value": (text + "\0").encode("utf-16-le")}


def dword(n):
    return {"t": 4, "value": struct.pack("<I", n)}


def set_values(h, node, values):
    h.node_set_values(node, [dict(v, key=k) for k, v in values])


def child(h, parent, name):
    return h.node_get_child(parent, name) or h.node_add_child(parent, name)


def path(h, names):
    node = h.root()
    for n in names:
        node = child(h, node, n)
    return node


def make_software(out, build="17763", product="Windows Server 2019 Datacenter", release="1809"):
    with open(out, "wb") as f:
        f.write(empty_hive("CMI-CreateHive{199DAFC2-6F16-4946-BF90-5A3FC3A60902}", "SOFTWARE"))
    h = hivex.Hivex(out, write=True)
    ms = path(h, ["Microsoft"])
    # Enough siblings that `Microsoft`'s list is long (made an `ri` below), with the real keys
    # among them in sort order.
    for k in range(1300):
        child(h, ms, "Vendor%04d" % k)
    cv = path(h, ["Microsoft", "Windows NT", "CurrentVersion"])
    values = [
        ("CurrentBuildNumber", sz(build)),
        ("CurrentBuild", sz(build)),
        ("ProductName", sz(product)),
        ("CurrentMajorVersionNumber", dword(10)),
        ("CurrentMinorVersionNumber", dword(0)),
        ("UBR", dword(6054)),
        ("InstallationType", sz("Server")),
        ("EditionID", sz("ServerDatacenter")),
    ] + ([("ReleaseId", sz(release))] if release is not None else []) + [
        ("SystemRoot", sz("C:\\Windows")),
    ]
    values += [("Filler%02d" % k, sz("value %d" % k)) for k in range(30)]
    set_values(h, cv, values)
    for name in ("Windows", "Cryptography", "Windows Defender", "Ünïcødé Κλειδί", "キー"):
        child(h, ms, name)
    # A value larger than a big-data segment (16344 bytes); hivex keeps it in one cell.
    set_values(h, child(h, ms, "Cryptography"), [("Blob", {"t": 3, "value": shake("Blob", 40000)})])
    path(h, ["Microsoft", "Windows NT", "CurrentVersion", "Winlogon"])
    path(h, ["Classes", ".txt"])
    path(h, ["Policies"])
    h.commit(None)
    del h
    before = hivexsh_ls(out, "\\Microsoft")
    split_into_ri(out, ["Microsoft"])
    after = hivexsh_ls(out, "\\Microsoft")
    assert before == after and len(after) == 1306, "hivexsh lists %d keys before the split, %d after" % (
        len(before), len(after))


def make_system(out):
    with open(out, "wb") as f:
        f.write(empty_hive("CMI-CreateHive{2A7FB991-7BBE-4F9D-B91E-7CB51D4737F5}", "SYSTEM"))
    h = hivex.Hivex(out, write=True)
    set_values(h, path(h, ["Select"]), [("Current", dword(1)), ("Default", dword(1)),
                                         ("Failed", dword(0)), ("LastKnownGood", dword(1))])
    set_values(h, path(h, ["ControlSet001", "Control", "ComputerName", "ComputerName"]),
               [("ComputerName", sz("KAIFUKU-SRV"))])
    path(h, ["ControlSet001", "Services", "CSAgent"])
    path(h, ["MountedDevices"])
    h.commit(None)


# ---------------------------------------------------------------------------------------------
# Raw reads of the hive, for the ri split and the header fields (this script's own reads)

def read_cell(data, off):
    at = HBIN + off
    (size,) = struct.unpack_from("<i", data, at)
    assert size < 0, "cell at %#x is free" % off
    return at + 4, -size


def nk_of(data, off):
    at, _ = read_cell(data, off)
    assert data[at:at + 2] == b"nk"
    flags, = struct.unpack_from("<H", data, at + 2)
    nsub, = struct.unpack_from("<I", data, at + 20)
    lst, = struct.unpack_from("<I", data, at + 28)
    nlen, = struct.unpack_from("<H", data, at + 72)
    raw = data[at + 76:at + 76 + nlen]
    name = raw.decode("latin-1") if flags & 0x20 else raw.decode("utf-16-le")
    return at, name, nsub, lst


def find_key(data, names):
    (root,) = struct.unpack_from("<I", data, 36)
    off = root
    for want in names:
        _, _, _, lst = nk_of(data, off)
        at, _ = read_cell(data, lst)
        sig = data[at:at + 2]
        assert sig == b"lh", "hivex wrote %r" % sig
        (n,) = struct.unpack_from("<H", data, at + 2)
        for i in range(n):
            (o,) = struct.unpack_from("<I", data, at + 4 + 8 * i)
            if nk_of(data, o)[1].lower() == want.lower():
                off = o
                break
        else:
            raise SystemExit("key %s not found" % want)
    return off


def split_into_ri(hive, names):
    data = bytearray(open(hive, "rb").read())
    key = find_key(data, names)
    nk_at, _, nsub, lst = nk_of(data, key)
    at, _ = read_cell(data, lst)
    (n,) = struct.unpack_from("<H", data, at + 2)
    assert n == nsub and n > 2
    elems = [data[at + 4 + 8 * i:at + 12 + 8 * i] for i in range(n)]
    half = n // 2
    first, second = elems[:half], elems[half:]
    # The first half stays in hivex's cell (its count shortened; the rest of the cell is slack).
    struct.pack_into("<H", data, at + 2, len(first))
    # A new hive bin at the end for the second lh and the ri.
    (bins_size,) = struct.unpack_from("<I", data, 40)
    lh2 = b"lh" + struct.pack("<H", len(second)) + b"".join(second)
    cells = cell(lh2)
    ri_off = bins_size + 32 + len(cells)
    lh2_off = bins_size + 32
    cells += cell(b"ri" + struct.pack("<HII", 2, lst, lh2_off))
    size = (32 + len(cells) + HBIN - 1) // HBIN * HBIN
    free = size - 32 - len(cells)
    cells += struct.pack("<i", free) + b"\0" * (free - 4)
    hbin = struct.pack("<4sIIIIQI", b"hbin", bins_size, size, 0, 0, 0, 0) + cells
    data = data[:HBIN + bins_size] + hbin
    struct.pack_into("<I", data, nk_at + 28, ri_off)
    header = bytearray(data[:4096])
    struct.pack_into("<I", header, 40, bins_size + size)
    reseal(header)
    data[:4096] = header
    open(hive, "wb").write(data)


def make_dirty(hive):
    data = bytearray(open(hive, "rb").read())
    primary, secondary = struct.unpack_from("<II", data, 4)
    assert primary == secondary, "hivex left %d/%d" % (primary, secondary)
    struct.pack_into("<I", data, 4, secondary + 1)
    header = bytearray(data[:4096])
    reseal(header)
    data[:4096] = header
    open(hive, "wb").write(data)


def header_fields(hive):
    data = open(hive, "rb").read(4096)
    primary, secondary = struct.unpack_from("<II", data, 4)
    root, bins = struct.unpack_from("<II", data, 36)
    (stored,) = struct.unpack_from("<I", data, 508)
    return {"primary_sequence": primary, "secondary_sequence": secondary, "root_cell": root,
            "hive_bins_size": bins, "checksum": stored, "checksum_ok": stored == xor32(data)}


# ---------------------------------------------------------------------------------------------
# Independent read-back: hivexget and hivexsh

def hivexget(hive, key, value=None):
    args = ["hivexget", hive, key] + ([value] if value is not None else [])
    rc, out = run(args)
    return out


def hivexsh_ls(hive, key):
    script = "cd %s\nls\n" % key
    p = subprocess.run(["hivexsh", hive], input=script.encode("utf-8"), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    assert p.returncode == 0, p.stdout
    return [line for line in p.stdout.decode("utf-8").splitlines() if line]


def hivexsh_lsval(hive, key):
    script = "cd %s\nlsval\n" % key
    p = subprocess.run(["hivexsh", hive], input=script.encode("utf-8"), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    assert p.returncode == 0, p.stdout
    return [line for line in p.stdout.decode("utf-8").splitlines() if line]


def subkey_list_signatures(hive):
    """Every subkey list cell in the hive, by signature (this script's own walk of the cells)."""
    data = open(hive, "rb").read()
    counts = {}
    at = HBIN
    end = HBIN + struct.unpack_from("<I", data, 40)[0]
    while at < end:
        assert data[at:at + 4] == b"hbin"
        (size,) = struct.unpack_from("<I", data, at + 8)
        c = at + 32
        while c < at + size:
            (cs,) = struct.unpack_from("<i", data, c)
            if cs < 0:
                sig = data[c + 4:c + 6].decode("latin-1")
                if sig in ("lf", "lh", "li", "ri"):
                    counts[sig] = counts.get(sig, 0) + 1
            c += abs(cs)
        at += size
    return counts


# ---------------------------------------------------------------------------------------------
# The NTFS volume

def mounted(img, mnt, when, action):
    os.makedirs(mnt, exist_ok=True)
    run(["ntfs-3g", "-o", "rw,noatime,big_writes", img, mnt], env=clock(when))
    try:
        return action(mnt)
    finally:
        for _ in range(50):
            if run(["umount", mnt], check=False)[0] == 0:
                break
            time.sleep(0.1)
        time.sleep(0.3)


def make_volume(img, d, software, system, mnt):
    with open(img, "wb") as f:
        f.truncate(48 << 20)
    run(["mkntfs", "-Q", "-F", "-q", "-c", "4096", "-L", "Windows", img], env=clock("2024-01-15 09:00:00"))
    run(["ntfslabel", "--new-serial=0123456789abcdef", img])

    def fill(m):
        config = os.path.join(m, CONFIG)
        os.makedirs(os.path.join(config, "TxR"))
        os.makedirs(os.path.join(m, CS))
        os.makedirs(os.path.join(m, "Windows/System32/drivers/etc"))
        for src, name in ((software, "SOFTWARE"), (system, "SYSTEM")):
            if src is not None:
                shutil.copyfile(src, os.path.join(config, name))
        for name in ("SOFTWARE", "SYSTEM"):
            for log in ("LOG1", "LOG2"):
                with open(os.path.join(config, "%s.%s" % (name, log)), "wb") as f:
                    f.write(shake("%s.%s" % (name, log), 8192))
        # What Windows keeps in config\TxR: the common log file and its containers.
        txr = os.path.join(config, "TxR")
        with open(os.path.join(txr, "%s.TxR.blf" % TXR_GUID), "wb") as f:
            f.write(shake("TxR.blf", 65536))
        for k in range(3):
            with open(os.path.join(txr, "%s.TxR.%d.regtrans-ms" % (TXR_GUID, k)), "wb") as f:
                f.write(shake("TxR.%d" % k, 1 << 20))
        for name in txr_names():
            os.setxattr(os.path.join(txr, name), "system.ntfs_attrib_be", struct.pack(">I", TXR_ATTRIBUTES))
        with open(os.path.join(m, CS, "csagent.sys"), "wb") as f:
            f.write(shake("csagent", 4000))
        with open(os.path.join(m, CS, N032), "wb") as f:
            f.write(b"\xaa\xaa\xaa\xaa\x01\x00\x23\x01" + shake("032", 2992))
    mounted(img, mnt, "2024-07-19 04:09:13", fill)
    # Read back by ntfs-3g's own lister, unmounted: config\TxR holds what Windows keeps there.
    _, listed = run(["ntfsls", "-p", "/Windows/System32/config/TxR", img])
    assert sorted(n for n in listed.split() if n not in (".", "..")) == sorted(txr_names()), listed

    # ... and on a fresh read-only mount, with the attributes Windows gives them.
    os.makedirs(mnt, exist_ok=True)
    run(["ntfs-3g", "-o", "ro", img, mnt])
    try:
        txr = os.path.join(mnt, CONFIG, "TxR")
        got = {n: struct.unpack(">I", os.getxattr(os.path.join(txr, n), "system.ntfs_attrib_be"))[0]
               for n in txr_names()}
    finally:
        for _ in range(50):
            if run(["umount", mnt], check=False)[0] == 0:
                break
            time.sleep(0.1)
    assert all(a & TXR_ATTRIBUTES == TXR_ATTRIBUTES for a in got.values()), got


def txr_names():
    """The files Windows keeps in config\\TxR: the common log file and its three containers."""
    return ["%s.TxR.blf" % TXR_GUID] + ["%s.TxR.%d.regtrans-ms" % (TXR_GUID, k) for k in range(3)]


def main():
    args = sys.argv[1:]
    hives_only = "--hives-only" in args
    args = [a for a in args if a != "--hives-only"]
    if len(args) != 1:
        print(__doc__)
        return 2
    if hivex is None:
        skip("python3-hivex is missing (apt-get install python3-hivex)")
    for tool in ("hivexsh", "hivexget"):
        if not shutil.which(tool):
            skip("%s is missing (apt-get install libhivex-bin)" % tool)
    d = args[0]
    if hives_only:
        make_hives(d)
        return 0
    if os.geteuid() != 0:
        skip("needs root for ntfs-3g FUSE mounts")
    if not os.path.exists("/dev/fuse"):
        skip("no /dev/fuse")
    for tool in ("mkntfs", "ntfs-3g", "ntfslabel"):
        if not shutil.which(tool):
            skip("%s is missing (apt-get install ntfs-3g)" % tool)
    if not glob.glob("/usr/lib/*/faketime/libfaketime.so.1") + glob.glob("/usr/lib/faketime/libfaketime.so.1"):
        skip("libfaketime is missing (apt-get install faketime)")
    software, system = make_hives(d)
    mnt = os.path.join(d, "mnt")
    make_volume(os.path.join(d, "win-hives.raw"), d, software, system, mnt)
    cut = os.path.join(d, "SOFTWARE.cut")
    with open(software, "rb") as f, open(cut, "wb") as g:
        g.write(f.read(8192))
    make_volume(os.path.join(d, "win-hives-broken.raw"), d, cut, None, mnt)
    make_volume(os.path.join(d, "win-hives-9600.raw"), d, os.path.join(d, "SOFTWARE-9600"), system, mnt)
    os.rmdir(mnt)
    return 0


def make_hives(d):
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    software = os.path.join(d, "SOFTWARE")
    system = os.path.join(d, "SYSTEM")
    make_software(software)
    make_software(os.path.join(d, "SOFTWARE-9600"), build="9600",
                  product="Windows Server 2012 R2 Datacenter", release=None)
    make_system(system)
    shutil.copyfile(system, system + ".clean")
    make_dirty(system)

    # The large value as hivex reads it back, byte for byte.
    h = hivex.Hivex(software)
    node = h.node_get_child(h.node_get_child(h.root(), "Microsoft"), "Cryptography")
    with open(os.path.join(d, "Blob.hivex"), "wb") as f:
        f.write(h.value_value(h.node_get_value(node, "Blob"))[1])
    del h

    cv = "\\Microsoft\\Windows NT\\CurrentVersion"
    expected = {
        "SOFTWARE": {
            "header": header_fields(software),
            "subkey_lists": subkey_list_signatures(software),
            "CurrentBuildNumber": hivexget(software, cv, "CurrentBuildNumber").rstrip("\n"),
            "ProductName": hivexget(software, cv, "ProductName").rstrip("\n"),
            "CurrentMajorVersionNumber": hivexget(software, cv, "CurrentMajorVersionNumber").strip(),
            "UBR": hivexget(software, cv, "UBR").strip(),
            "microsoft_subkeys": hivexsh_ls(software, "\\Microsoft"),
            "current_version_values": hivexsh_lsval(software, cv),
            "root_subkeys": hivexsh_ls(software, "\\"),
        },
        "SYSTEM": {
            "header": header_fields(system),
            "subkey_lists": subkey_list_signatures(system),
            "ComputerName": hivexget(system, "\\ControlSet001\\Control\\ComputerName\\ComputerName",
                                         "ComputerName").rstrip("\n"),
            "root_subkeys": hivexsh_ls(system, "\\"),
        },
        "SYSTEM.clean": {"header": header_fields(system + ".clean")},
        "SOFTWARE-9600": {
            "CurrentBuildNumber": hivexget(os.path.join(d, "SOFTWARE-9600"), cv, "CurrentBuildNumber").rstrip("\n"),
        },
    }
    # The recipe's facts must be what the tools read back.
    s = expected["SOFTWARE"]
    assert s["CurrentBuildNumber"] == "17763", s["CurrentBuildNumber"]
    assert s["subkey_lists"].get("ri") == 1 and s["subkey_lists"].get("lh", 0) >= 2, s["subkey_lists"]
    assert len(s["microsoft_subkeys"]) == 1306, len(s["microsoft_subkeys"])
    assert s["header"]["checksum_ok"] and s["header"]["primary_sequence"] == s["header"]["secondary_sequence"]
    assert expected["SOFTWARE-9600"]["CurrentBuildNumber"] == "9600", expected["SOFTWARE-9600"]
    y = expected["SYSTEM"]["header"]
    assert y["checksum_ok"] and y["primary_sequence"] == y["secondary_sequence"] + 1, y
    with open(os.path.join(d, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True, ensure_ascii=False)
    return software, system


if __name__ == "__main__":
    sys.exit(main())
