#!/usr/bin/env python3
"""Benchmark of a fix in cloud storage (prints a table; asserts nothing): a 128 GiB fixed VHD
(sparse; GPT, the Windows volume of the mbr-win fixture inside) stored as an Azure page blob on
Azurite, then `kaifuku inspect URL` and `kaifuku fix --in-place URL --undo FILE`, and the same fix
of a second copy from the page in headless Chromium (tests/bench/page-remote.mjs): time, requests,
bytes read and written — as kaifuku counts them and as Azurite's own request log does. Against
that, what downloading the blob, fixing it and uploading it again would move (the whole blob each
way), with the time at the download rate Azurite gives on this machine (measured on 1 GiB of the
blob).

Needs setup.sh's tools (Azurite and playwright-core in node_modules, Chromium), a release build and
the page (dist/), the fixtures, sfdisk, qemu-img. Azurite runs on port 10000, the one the page's
security policy allows besides Azure's own hosts.
Usage: tests/bench/cloud-bench.py [SIZE_GIB]   (default 128)
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KAIFUKU = os.path.join(ROOT, "target", "release", "kaifuku")
FIXTURES = os.environ.get("KAIFUKU_FIXTURES", os.path.join(ROOT, "tests", "out", "fixtures"))
AZ = os.path.join(ROOT, "tests", "azurite.py")
GIB = 1 << 30


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def large_sparse_vhd(path, size, work):
    """A fixed VHD of `size` bytes of disk: the fixture's Windows partition at its own offset."""
    src = os.path.join(FIXTURES, "mbr-win.raw")
    parts = json.loads(run(["sfdisk", "-J", src]).stdout)["partitiontable"]["partitions"]
    p = next(x for x in parts if x["node"].endswith("2"))
    raw = os.path.join(work, "disk.raw")
    with open(raw, "wb") as f:
        f.truncate(size)
    run(["sfdisk", "--quiet", raw], input=(
        f"label: gpt\nstart={p['start']}, size={p['size']}, "
        "type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, name=\"Basic data partition\"\n"))
    run(["dd", f"if={src}", f"of={raw}", "bs=1M", f"skip={p['start'] * 512}", f"seek={p['start'] * 512}",
         f"count={p['size'] * 512}", "iflag=skip_bytes,count_bytes", "oflag=seek_bytes",
         "conv=notrunc,sparse", "status=none"])
    run(["qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=fixed,force_size=on", raw, path])
    os.remove(raw)


def azurite_traffic(log_path, blob, skip):
    """(requests, bytes read, bytes written) Azurite logged for `blob`, after the first `skip`."""
    methods, out = {}, []
    for line in open(log_path, errors="replace"):
        f = line.split()
        if len(f) < 2:
            continue
        rid = f[1]
        if "RequestMethod=" in line and f"/disks/{blob}" in line:
            methods[rid] = [line.split("RequestMethod=")[1].split()[0], 0]
        elif "DeserializedParameters=" in line and '"comp":"page"' in line and rid in methods:
            m = re.search(r'"contentLength":(\d+)', line)
            if m:
                methods[rid][1] = int(m.group(1))
        elif "EndMiddleware: End response" in line and rid in methods:
            method, put = methods.pop(rid)
            m = re.search(r'"content-length":"(\d+)"', line)
            out.append((method, int(m.group(1)) if (m and method == "GET") else put))
    out = out[skip:]
    return len(out), sum(n for m, n in out if m == "GET"), sum(n for m, n in out if m == "PUT"), len(out) + skip


def kaifuku_remote_line(text):
    m = re.findall(r"Remote:?\s+(\d+) request\(s\), ([\d.]+ \w+) read(?:, ([\d.]+ \w+) written)?", text)
    return m[-1] if m else None


def main():
    size = int(sys.argv[1]) * GIB if len(sys.argv) > 1 else 128 * GIB
    work = tempfile.mkdtemp(prefix="kaifuku-cloud-bench-")
    pid = None
    try:
        vhd = os.path.join(work, "disk.vhd")
        large_sparse_vhd(vhd, size, work)
        port = "10000"
        pid = int(run(["python3", AZ, "start", os.path.join(work, "az"), port]).stdout)
        t0 = time.time()
        url = run(["python3", AZ, "upload", port, "disk.vhd", vhd]).stdout.strip()
        upload_s = time.time() - t0
        log = os.path.join(work, "az", "requests.log")
        _, _, _, seen = azurite_traffic(log, "disk.vhd", 0)
        rows = []
        for what, args in [
            ("inspect", [KAIFUKU, "inspect", url]),
            ("fix --in-place", [KAIFUKU, "fix", "--in-place", url, "--undo", os.path.join(work, "u.undo")]),
        ]:
            t0 = time.time()
            r = subprocess.run(args, capture_output=True, text=True)
            dt = time.time() - t0
            if r.returncode != 0:
                raise SystemExit(f"{what}: {r.stderr}")
            reqs, rd, wr, total = azurite_traffic(log, "disk.vhd", seen)
            seen = total
            own = kaifuku_remote_line(r.stdout)
            rows.append((what, f"{dt:.2f} s", str(reqs), f"{rd / 2**20:.2f} MiB", f"{wr / 2**10:.1f} KiB",
                         f"{own[0]} requests, {own[1]} read" + (f", {own[2]} written" if own[2] else "") if own else "?"))
        # The same fix from the page, of a second copy of the blob.
        page_url = run(["python3", AZ, "upload", port, "page.vhd", vhd]).stdout.strip()
        _, _, _, page_seen = azurite_traffic(log, "page.vhd", 0)
        page = subprocess.Popen(["node", os.path.join(ROOT, "tests", "bench", "page-remote.mjs"), page_url],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        origin = page.stdout.readline().strip()
        run(["python3", AZ, "cors", port, origin])
        out, _ = page.communicate("go\n", timeout=1800)
        if page.returncode != 0:
            raise SystemExit(f"the page's fix failed: {out}")
        t = json.loads(out.strip().splitlines()[-1])
        reqs, rd, wr, _ = azurite_traffic(log, "page.vhd", page_seen)
        own = t["own"]
        rows.append(("page: open, verify and undo file, write and read back",
                     f"{(t['open_plan_ms'] + t['verify_undo_ms'] + t['write_readback_ms']) / 1000:.2f} s "
                     f"({t['open_plan_ms'] / 1000:.2f} + {t['verify_undo_ms'] / 1000:.2f} + "
                     f"{t['write_readback_ms'] / 1000:.2f})",
                     str(reqs), f"{rd / 2**20:.2f} MiB", f"{wr / 2**10:.1f} KiB",
                     f"{own['requests']} requests, {int(own['bytesRead']) / 2**20:.2f} MiB read, "
                     f"{int(own['bytesWritten']) / 2**10:.1f} KiB written"))
        # The download rate Azurite gives here, on the first GiB of the blob.
        t0 = time.time()
        req = urllib.request.Request(url, headers={"x-ms-range": f"bytes=0-{GIB - 1}", "x-ms-version": "2021-08-06"})
        got = len(urllib.request.urlopen(req, timeout=600).read())
        rate = got / (time.time() - t0)
        blob = size + 512
        print(f"\nAzure page blob on Azurite: a {size // GIB} GiB fixed VHD ({blob} bytes), "
              f"stored in {upload_s:.0f} s (zero pages not sent)\n")
        print("| step | time | requests (Azurite's log) | read | written | kaifuku's own count |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            print("| " + " | ".join(r) + " |")
        print(f"| download + fix + upload instead | ≈ {2 * blob / rate / 60:.0f} min at {rate / 2**20:.0f} MiB/s "
              f"(measured on 1 GiB here) | — | {blob / GIB:.0f} GiB | {blob / GIB:.0f} GiB | — |")
    finally:
        if pid:
            subprocess.run(["kill", "--", f"-{pid}"])
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
