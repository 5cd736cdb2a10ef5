"""The object-store baseline of `bench s` (bench/NOTES.md, "Object storage against boto3"):
a plain multipart upload and download of as many bytes by boto3, with its default transfer
settings (8 MiB parts, 10 threads), from and to host memory, against the same server.

    python3 bench/boto3_baseline.py BYTES s3://BUCKET/KEY

The endpoint and credentials come from the environment (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
...), as for wgfit. Prints `upload_s <seconds>` and `download_s <seconds>`; the object is
removed afterwards.
"""

import io
import os
import sys
import time

import boto3


def main() -> None:
    size = int(sys.argv[1])
    bucket, _, key = sys.argv[2].removeprefix("s3://").partition("/")
    s3 = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL"))
    payload = os.urandom(1 << 20) * (size >> 20) + os.urandom(size & ((1 << 20) - 1))
    start = time.perf_counter()
    s3.upload_fileobj(io.BytesIO(payload), bucket, key)
    upload_s = time.perf_counter() - start
    sink = io.BytesIO()
    start = time.perf_counter()
    s3.download_fileobj(bucket, key, sink)
    download_s = time.perf_counter() - start
    if sink.getvalue() != payload:
        sys.exit("boto3 baseline: the download differs from the upload")
    s3.delete_object(Bucket=bucket, Key=key)
    print(f"upload_s {upload_s}")
    print(f"download_s {download_s}")


if __name__ == "__main__":
    main()
