#!/usr/bin/env python3
"""moto (an S3 and EBS emulator) for the cloud tests: starts it, stores disk images as S3 objects
with boto3 (AWS's own SDK, never kaifuku's code) and reads them back, and reports from moto's
request recording what went over the wire.

  tests/s3.py start DIR PORT           run moto_server on 127.0.0.1:PORT (recording requests);
                                       prints its pid once it answers
  tests/s3.py upload PORT BUCKET KEY FILE
  tests/s3.py download PORT BUCKET KEY FILE
  tests/s3.py traffic PORT BUCKET KEY...  JSON, per KEY: the requests to it since the last call
                                       (method counts), bytes read by GET ranges (-1: a whole-object
                                       read), bytes uploaded in request bodies, bytes the store
                                       copied (UploadPartCopy ranges)

Uses the interpreter of .venv-tools (setup.sh makes it): moto[server] and boto3.
"""
import base64
import json
import os
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, ".venv-tools", "bin")


def client(port):
    import boto3
    return boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", aws_access_key_id="testing",
                        aws_secret_access_key="testing", region_name="us-east-1")


def start(data_dir, port):
    os.makedirs(data_dir, exist_ok=True)
    log = open(os.path.join(data_dir, "moto.log"), "wb")
    p = subprocess.Popen([os.path.join(VENV, "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                         stdout=log, stderr=log, start_new_session=True,
                         env=dict(os.environ, MOTO_RECORDER_FILEPATH=os.path.join(data_dir, "requests.jsonl")))
    for _ in range(300):
        try:
            urllib.request.urlopen(urllib.request.Request(
                f"http://127.0.0.1:{port}/moto-api/recorder/start-recording", method="POST"), timeout=1).read()
            print(p.pid)
            return
        except OSError:
            if p.poll() is not None:
                raise SystemExit(f"s3.py: moto_server exited ({p.returncode}); see {data_dir}/moto.log")
            time.sleep(0.1)
    p.kill()
    raise SystemExit("s3.py: moto_server did not answer within 30 s")


def traffic(port, bucket, keys):
    raw = urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/recorder/download-recording").read()
    urllib.request.urlopen(urllib.request.Request(
        f"http://127.0.0.1:{port}/moto-api/recorder/reset-recording", method="POST")).read()
    all_out = {k: {"requests": 0, "methods": {}, "read": 0, "uploaded": 0, "copied": 0, "largest_read": 0}
               for k in keys}
    text, at, records = raw.decode(), 0, []
    dec = json.JSONDecoder()
    while at < len(text):
        while at < len(text) and text[at].isspace():
            at += 1
        if at >= len(text):
            break
        r, at = dec.raw_decode(text, at)
        records.append(r)
    for r in records:
        path = r["url"].split("?")[0]
        key = next((k for k in keys if path.endswith(f"/{bucket}/{k}")), None)
        if key is None:
            continue
        out = all_out[key]
        out["requests"] += 1
        out["methods"][r["method"]] = out["methods"].get(r["method"], 0) + 1
        h = {k.lower(): v for k, v in r["headers"].items()}
        if r["method"] == "GET":
            rng = h.get("range", "")
            if rng.startswith("bytes="):
                a, b = rng[6:].split("-")
                n = int(b) - int(a) + 1
            else:
                n = -1  # a whole-object read
            out["read"] += max(n, 0)
            out["largest_read"] = n if n < 0 or out["largest_read"] < 0 else max(out["largest_read"], n)
        elif r["method"] == "PUT":
            body = r.get("body") or ""
            n = len(base64.b64decode(body)) if r.get("body_encoded") else len(body.encode("latin-1"))
            out["uploaded"] += n
            src = h.get("x-amz-copy-source-range", "")
            if src.startswith("bytes="):
                a, b = src[6:].split("-")
                out["copied"] += int(b) - int(a) + 1
    print(json.dumps(all_out))


def main(a):
    if len(a) < 2:
        raise SystemExit(__doc__)
    if a[1] == "start":
        start(a[2], int(a[3]))
    elif a[1] == "upload":
        c = client(int(a[2]))
        try:
            c.create_bucket(Bucket=a[3])
        except c.exceptions.BucketAlreadyOwnedByYou:
            pass
        c.upload_file(a[5], a[3], a[4])
    elif a[1] == "download":
        client(int(a[2])).download_file(a[3], a[4], a[5])
    elif a[1] == "traffic":
        traffic(int(a[2]), a[3], a[4:])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
