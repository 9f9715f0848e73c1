#!/usr/bin/env python3
"""Azurite (Microsoft's Azure Storage emulator) for the cloud tests: starts it, stores disk images
as page blobs the way Azure holds a managed disk export, and reads them back. Only Azure's REST API
is used (the standard library's HTTP client, an account SAS signed with Azurite's well-known
development key), never kaifuku's own code, so the tests judge kaifuku with an independent writer.

  tests/azurite.py start DIR PORT        run azurite-blob on 127.0.0.1:PORT, data in DIR; prints
                                         its pid once it answers
  tests/azurite.py upload PORT NAME FILE create page blob NAME (container "disks") holding FILE
                                         (zero pages are not sent); prints the blob's SAS URL
  tests/azurite.py download URL FILE     writes the blob to FILE (sparse)
  tests/azurite.py put-page URL OFFSET HEX  one Put Page (512-byte aligned) as another writer would
  tests/azurite.py log DIR               the request lines Azurite logged (method, range, length)
  tests/azurite.py cors PORT [ORIGIN [EXPOSED]]
                                         the blob service's CORS rules: ORIGIN allowed (GET, PUT,
                                         HEAD, OPTIONS; every header allowed, EXPOSED exposed: *
                                         unless given), as the page tells users to set them;
                                         without ORIGIN, no rule
"""
import base64
import hashlib
import hmac
import http.client
import os
import subprocess
import sys
import time
import urllib.parse

ACCOUNT = "devstoreaccount1"
# Azurite's published development key (the same in every Azurite installation).
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
VERSION = "2021-08-06"
CONTAINER = "disks"
PAGE_CHUNK = 4 << 20
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def account_sas():
    """An account SAS for the blob service, all permissions, valid until 2099."""
    fields = {
        "sv": "2019-12-12",
        "ss": "b",
        "srt": "sco",
        "sp": "rwdlacup",
        "se": "2099-01-01T00:00:00Z",
        "spr": "https,http",
    }
    to_sign = "\n".join([ACCOUNT, fields["sp"], fields["ss"], fields["srt"], "", fields["se"], "",
                         fields["spr"], fields["sv"], ""])
    sig = base64.b64encode(hmac.new(base64.b64decode(KEY), to_sign.encode(), hashlib.sha256).digest())
    fields["sig"] = sig.decode()
    return urllib.parse.urlencode(fields)


def request(url, method, headers=None, body=None, ok=(200, 201, 202, 206)):
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    path = u.path + ("?" + u.query if u.query else "")
    h = {"x-ms-version": VERSION}
    h.update(headers or {})
    if body is not None:
        h["Content-Length"] = str(len(body))
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    if r.status not in ok:
        raise SystemExit(f"azurite.py: {method} {u.path}: {r.status} {r.reason}: {data[:300]!r}")
    return r, data


def with_query(url, extra):
    u = urllib.parse.urlsplit(url)
    q = u.query + ("&" if u.query else "") + extra
    return urllib.parse.urlunsplit((u.scheme, u.netloc, u.path, q, u.fragment))


def start(data_dir, port):
    os.makedirs(data_dir, exist_ok=True)
    exe = os.path.join(ROOT, "node_modules", ".bin", "azurite-blob")
    log = open(os.path.join(data_dir, "debug.log"), "wb")
    p = subprocess.Popen(
        [exe, "--silent", "--location", data_dir, "--blobHost", "127.0.0.1", "--blobPort", str(port),
         "--skipApiVersionCheck", "--loose", "--debug", os.path.join(data_dir, "requests.log")],
        stdout=log, stderr=log, start_new_session=True)
    for _ in range(300):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", f"/{ACCOUNT}?comp=list&" + account_sas())
            c.getresponse().read()
            print(p.pid)
            return
        except OSError:
            if p.poll() is not None:
                raise SystemExit(f"azurite.py: azurite-blob exited ({p.returncode}); see {data_dir}/debug.log")
            time.sleep(0.1)
    p.kill()
    raise SystemExit("azurite.py: azurite-blob did not answer within 30 s")


def upload(port, name, path):
    base = f"http://127.0.0.1:{port}/{ACCOUNT}"
    sas = account_sas()
    request(f"{base}/{CONTAINER}?restype=container&{sas}", "PUT", ok=(201, 409))
    url = f"{base}/{CONTAINER}/{name}?{sas}"
    size = os.path.getsize(path)
    if size % 512:
        raise SystemExit("azurite.py: a page blob's size is a multiple of 512 bytes")
    request(url, "PUT", {"x-ms-blob-type": "PageBlob", "x-ms-blob-content-length": str(size)}, b"")
    with open(path, "rb") as f:
        for start, end in data_regions(f.fileno(), size):
            at = start // 512 * 512
            end = min(size, -(-end // 512) * 512)
            while at < end:
                f.seek(at)
                chunk = f.read(min(PAGE_CHUNK, end - at))
                if chunk.strip(b"\0"):
                    request(with_query(url, "comp=page"), "PUT", {
                        "x-ms-page-write": "update",
                        "x-ms-range": f"bytes={at}-{at + len(chunk) - 1}",
                    }, chunk)
                at += len(chunk)
    print(url)


def data_regions(fd, size):
    """The file's data regions (holes skipped), or the whole file where holes are not reported."""
    import errno
    at = 0
    while at < size:
        try:
            start = os.lseek(fd, at, os.SEEK_DATA)
        except OSError as e:
            if e.errno != errno.ENXIO:  # no hole reporting here: all of it is data
                yield at, size
            return
        end = os.lseek(fd, start, os.SEEK_HOLE)
        yield start, min(end, size)
        at = end


def download(url, path):
    r, _ = request(url, "HEAD", ok=(200,))
    size = int(r.getheader("Content-Length"))
    with open(path, "wb") as f:
        f.truncate(size)
        at = 0
        while at < size:
            n = min(PAGE_CHUNK, size - at)
            _, data = request(url, "GET", {"x-ms-range": f"bytes={at}-{at + n - 1}"})
            if len(data) != n:
                raise SystemExit(f"azurite.py: short read at {at}")
            if data.strip(b"\0"):
                f.seek(at)
                f.write(data)
            at += n


def put_page(url, offset, hexbytes):
    data = bytes.fromhex(hexbytes)
    request(with_query(url, "comp=page"), "PUT", {
        "x-ms-page-write": "update",
        "x-ms-range": f"bytes={offset}-{offset + len(data) - 1}",
    }, data)


def cors(port, origin=None, exposed="*"):
    rule = "" if origin is None else (
        "<CorsRule>"
        f"<AllowedOrigins>{origin}</AllowedOrigins>"
        "<AllowedMethods>GET,PUT,HEAD,OPTIONS</AllowedMethods>"
        "<MaxAgeInSeconds>3600</MaxAgeInSeconds>"
        f"<ExposedHeaders>{exposed}</ExposedHeaders>"
        "<AllowedHeaders>*</AllowedHeaders>"
        "</CorsRule>")
    body = ('<?xml version="1.0" encoding="utf-8"?>'
            f"<StorageServiceProperties><Cors>{rule}</Cors></StorageServiceProperties>").encode()
    url = f"http://127.0.0.1:{port}/{ACCOUNT}/?restype=service&comp=properties&{account_sas()}"
    request(url, "PUT", {"Content-Type": "application/xml"}, body)


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    cmd = argv[1]
    if cmd == "start":
        start(argv[2], int(argv[3]))
    elif cmd == "upload":
        upload(int(argv[2]), argv[3], argv[4])
    elif cmd == "download":
        download(argv[2], argv[3])
    elif cmd == "cors":
        cors(int(argv[2]), *argv[3:5])
    elif cmd == "put-page":
        put_page(argv[2], int(argv[3]), argv[4])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
