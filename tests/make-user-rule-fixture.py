#!/usr/bin/env python3
"""An image for a user's rule file, made with ntfs-3g from a copy of the gpt-win.raw fixture.

    python3 tests/make-user-rule-fixture.py FIXTURES OUTDIR

Writes into OUTDIR (replacing it):

  contoso.raw     gpt-win.raw with, on its Windows volume, `\\ProgramData\\Contoso\\Agent\\Channels`
                  holding CH-0042-a.bin (starts with de ad be ef 01 00, modified 2025-03-02
                  04:09:30 UTC: inside the rule's faulty window), CH-0042-b.bin (modified 05:20
                  UTC, after fixed_from) and CH-0041.bin (the rule's glob does not match it). The
                  CrowdStrike channel file of the fixture stays.
  contoso.toml    the rule file for them (the same rule as crates/cli/tests/fix_oracle.rs').
  expected.json   what ntfs-3g wrote: the matching paths, their sizes, and the modified times as
                  `stat` reads them on the mount.

The files are written through an ntfs-3g mount of the extracted volume, stamped with `touch -d`,
and the volume is put back into the sparse copy with dd: never by kaifuku's own code. Needs root
(FUSE) and ntfs-3g; without them it exits 77 with the reason.
"""

import json
import os
import shutil
import subprocess
import sys
import time

RULE = r"""format = 1
[[rule]]
id = "contoso-agent-2025-03-02"
directory = '\ProgramData\Contoso\Agent\Channels'
name = "CH-0042*.bin"
header = "de ad be ef 01 00"
faulty = { from = 2025-03-02T04:09:00Z, to = 2025-03-02T04:10:00Z }
fixed_from = 2025-03-02T05:27:00Z
[rule.title]
en = "Contoso agent channel file 42 (2025-03-02)"
ja = "Contoso エージェントのチャネルファイル 42(2025-03-02)"
[rule.description]
en = "The channel file behind the 2025-03-02 boot loop; deleting it lets Windows start."
ja = "2025-03-02 の起動ループの原因となったチャネルファイルです。削除すると Windows が起動します。"
"""

DIR = "ProgramData/Contoso/Agent/Channels"


def skip(why):
    print("SKIPPED make-user-rule-fixture: %s" % why)
    sys.exit(77)


def run(cmd, check=True):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = p.stdout.decode("utf-8", "replace")
    if check and p.returncode:
        raise SystemExit("%s failed (%d): %s" % (" ".join(cmd), p.returncode, out))
    return p.returncode, out


def windows_volume(fixtures):
    with open(os.path.join(fixtures, "gpt-win.raw.expected.json")) as f:
        exp = json.load(f)
    v = next(v for v in exp["volumes"] if v["windows"])
    size = next(p["size"] for p in exp["partitions"] if p["number"] == v["partition"])
    return v["offset"], size


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    fixtures, out = sys.argv[1], sys.argv[2]
    if os.geteuid() != 0:
        skip("needs root for the ntfs-3g FUSE mount")
    if shutil.which("ntfs-3g") is None:
        skip("ntfs-3g is missing (apt-get install ntfs-3g)")
    if not os.path.exists("/dev/fuse"):
        skip("no /dev/fuse")
    source = os.path.join(fixtures, "gpt-win.raw")
    if not os.path.exists(source):
        raise SystemExit("%s is missing: run tests/make-fixtures.py first" % source)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    offset, size = windows_volume(fixtures)
    mib = 1 << 20
    assert offset % mib == 0 and size % mib == 0, (offset, size)
    vol = os.path.join(out, "windows.vol")
    run(["dd", "if=" + source, "of=" + vol, "bs=1M", "skip=%d" % (offset // mib),
         "count=%d" % (size // mib), "conv=sparse", "status=none"])
    mnt = os.path.join(out, "mnt")
    os.makedirs(mnt)
    run(["ntfs-3g", "-o", "rw,noatime", vol, mnt])
    expected = {"matches": []}
    try:
        d = os.path.join(mnt, DIR)
        os.makedirs(d)
        faulty = bytes([0xDE, 0xAD, 0xBE, 0xEF, 0x01, 0x00]) + bytes((i * 7) & 0xFF for i in range(9000))
        fixed = bytes((i * 13 + 1) & 0xFF for i in range(7000))
        files = [
            ("CH-0042-a.bin", faulty, "2025-03-02 04:09:30 UTC", "faulty"),
            ("CH-0042-b.bin", fixed, "2025-03-02 05:40:00 UTC", "fixed"),
            ("CH-0041.bin", fixed, "2025-03-02 04:09:30 UTC", None),
        ]
        for name, data, when, verdict in files:
            p = os.path.join(d, name)
            with open(p, "wb") as f:
                f.write(data)
            run(["touch", "-m", "-d", when, p])
            if verdict:
                st = os.stat(p)
                expected["matches"].append({
                    "path": "\\" + DIR.replace("/", "\\") + "\\" + name,
                    "size": st.st_size,
                    "modified_unix": int(st.st_mtime),
                    "verdict": verdict,
                    "header_matches": data.startswith(faulty[:6]),
                })
    finally:
        for _ in range(50):
            if run(["umount", mnt], check=False)[0] == 0:
                break
            time.sleep(0.1)
        os.rmdir(mnt)
    image = os.path.join(out, "contoso.raw")
    run(["cp", "--sparse=always", source, image])
    run(["dd", "if=" + vol, "of=" + image, "bs=1M", "seek=%d" % (offset // mib),
         "conv=notrunc", "status=none"])
    os.remove(vol)
    with open(os.path.join(out, "contoso.toml"), "w") as f:
        f.write(RULE)
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)


if __name__ == "__main__":
    main()
