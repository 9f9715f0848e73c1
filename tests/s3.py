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
  tests/s3.py ebs-upload PORT FILE     a completed EBS snapshot of FILE (a disk of whole GiB or less,
                                       padded with zeros): its non-zero blocks put by boto3; prints
                                       the snapshot id
  tests/s3.py ebs-download PORT SNAP FILE [PARENT]
                                       the disk SNAP holds, as the EBS direct APIs define it: the
                                       parent's blocks (if given) with SNAP's own over them, zeros
                                       elsewhere
  tests/s3.py ebs-blocks PORT SNAP     JSON: the indices of the blocks SNAP itself holds
  tests/s3.py ec2-snapshots PORT       JSON: the ids of the snapshots EC2 lists
  tests/s3.py ebs-traffic PORT         JSON: the EBS and EC2 requests since the last call, by kind,
                                       the bytes of the blocks put, and the StartSnapshot bodies

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


def recorded(port):
    """The requests moto recorded since the last call (the recording is then started afresh)."""
    raw = urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/recorder/download-recording").read()
    urllib.request.urlopen(urllib.request.Request(
        f"http://127.0.0.1:{port}/moto-api/recorder/reset-recording", method="POST")).read()
    text, at, records = raw.decode(), 0, []
    dec = json.JSONDecoder()
    while at < len(text):
        while at < len(text) and text[at].isspace():
            at += 1
        if at >= len(text):
            break
        r, at = dec.raw_decode(text, at)
        records.append(r)
    return records


def body_len(r):
    """The length of a recorded request's body."""
    body = r.get("body") or ""
    return len(base64.b64decode(body)) if r.get("body_encoded") else len(body.encode("latin-1"))


def traffic(port, bucket, keys):
    all_out = {k: {"requests": 0, "methods": {}, "read": 0, "uploaded": 0, "copied": 0, "largest_read": 0}
               for k in keys}
    for r in recorded(port):
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
            out["uploaded"] += body_len(r)
            src = h.get("x-amz-copy-source-range", "")
            if src.startswith("bytes="):
                a, b = src[6:].split("-")
                out["copied"] += int(b) - int(a) + 1
    print(json.dumps(all_out))


def ebs(port):
    import boto3
    from botocore.config import Config
    return boto3.client("ebs", endpoint_url=f"http://127.0.0.1:{port}", aws_access_key_id="testing",
                        aws_secret_access_key="testing", region_name="us-east-1",
                        config=Config(max_pool_connections=16))


def ebs_upload(port, path):
    import concurrent.futures
    import hashlib
    c = ebs(port)
    size = os.path.getsize(path)
    gib = max(1, -(-size // (1 << 30)))
    snap = c.start_snapshot(VolumeSize=gib, Description="kaifuku test disk")
    sid, bs = snap["SnapshotId"], snap["BlockSize"]
    blocks = []
    with open(path, "rb") as f:
        i = 0
        while True:
            b = f.read(bs)
            if not b:
                break
            b = b.ljust(bs, b"\0")
            if b.count(0) != len(b):
                blocks.append((i, b))
            i += 1

    def put(ib):
        i, b = ib
        c.put_snapshot_block(SnapshotId=sid, BlockIndex=i, BlockData=b, DataLength=bs,
                             Checksum=base64.b64encode(hashlib.sha256(b).digest()).decode(),
                             ChecksumAlgorithm="SHA256")
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(put, blocks))
    c.complete_snapshot(SnapshotId=sid, ChangedBlocksCount=len(blocks))
    print(sid)


def ebs_blocks(c, sid):
    out, token = {}, None
    while True:
        kw = {"NextToken": token} if token else {}
        r = c.list_snapshot_blocks(SnapshotId=sid, **kw)
        for b in r["Blocks"]:
            out[b["BlockIndex"]] = b["BlockToken"]
        token = r.get("NextToken")
        if not token:
            return out, r["VolumeSize"], r["BlockSize"]


def ebs_download(port, sid, path, parent=None):
    c = ebs(port)
    own, gib, bs = ebs_blocks(c, sid)
    with open(path, "wb") as f:
        f.truncate(gib << 30)
        for snap, blocks in ([(parent, ebs_blocks(c, parent)[0])] if parent else []) + [(sid, own)]:
            for i, token in sorted(blocks.items()):
                data = c.get_snapshot_block(SnapshotId=snap, BlockIndex=i, BlockToken=token)["BlockData"].read()
                f.seek(i * bs)
                f.write(data)


def ebs_traffic(port):
    out = {"list": 0, "get_block": 0, "put_block": 0, "put_bytes": 0, "start": 0, "complete": 0,
           "ec2": 0, "other": 0, "start_bodies": []}
    for r in recorded(port):
        path, m = r["url"].split("?")[0], r["method"]
        parts = [p for p in path.split("/") if p]
        if parts[-1:] == ["snapshots"] and m == "POST":
            out["start"] += 1
            body = r.get("body") or "{}"
            out["start_bodies"].append(json.loads(base64.b64decode(body) if r.get("body_encoded") else body))
        elif "completion" in parts:
            out["complete"] += 1
        elif parts[-1:] == ["blocks"] and m == "GET":
            out["list"] += 1
        elif len(parts) >= 2 and parts[-2] == "blocks" and m == "GET":
            out["get_block"] += 1
        elif len(parts) >= 2 and parts[-2] == "blocks" and m == "PUT":
            out["put_block"] += 1
            out["put_bytes"] += body_len(r)
        elif "snapshots" not in parts:
            out["ec2"] += 1
        else:
            out["other"] += 1
    print(json.dumps(out))


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
    elif a[1] == "ebs-upload":
        ebs_upload(int(a[2]), a[3])
    elif a[1] == "ebs-download":
        ebs_download(int(a[2]), a[3], a[4], a[5] if len(a) > 5 else None)
    elif a[1] == "ebs-blocks":
        print(json.dumps(sorted(ebs_blocks(ebs(int(a[2])), a[3])[0])))
    elif a[1] == "ec2-snapshots":
        import boto3
        c = boto3.client("ec2", endpoint_url=f"http://127.0.0.1:{a[2]}", aws_access_key_id="testing",
                         aws_secret_access_key="testing", region_name="us-east-1")
        print(json.dumps(sorted(x["SnapshotId"] for x in c.describe_snapshots(OwnerIds=["self"])["Snapshots"])))
    elif a[1] == "ebs-traffic":
        ebs_traffic(int(a[2]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
