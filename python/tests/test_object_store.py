"""A BackupAndRestore on S3 (`s3://bucket/prefix`, as the CLI takes it), against a local
`moto_server` this test starts (`pip install 'moto[server]'`; `.ci/run` installs it): the
backup's objects are there after a stopped run, and a run resumed from them ends with the
weights of an uninterrupted one."""
import socket
import subprocess
import time

import numpy as np
import pytest

import wgfit
from wgfit.callbacks import BackupAndRestore


@pytest.fixture
def s3(monkeypatch):
    """A moto_server on a free port, the environment wgfit reaches it by, and a bucket."""
    import boto3

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(["moto_server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)
        endpoint = f"http://127.0.0.1:{port}"
        for k, v in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                     "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint}.items():
            monkeypatch.setenv(k, v)
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        client.create_bucket(Bucket="runs")
        yield client
    finally:
        server.kill()
        server.wait()


def compiled():
    model = wgfit.Model.from_json(
        '{"class_name": "Sequential", "config": {"layers": ['
        '{"class_name": "InputLayer", "config": {"batch_shape": [null, 64]}},'
        '{"class_name": "Dense", "config": {"units": 16, "activation": "relu"}},'
        '{"class_name": "Dense", "config": {"units": 10, "activation": "softmax"}}]}}')
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", seed=3)
    return model


def test_a_backup_on_s3_resumes_exactly(s3, digits_data, capfd):
    x, y = digits_data
    url = "s3://runs/digits"

    def fit(model, epochs):
        return model.fit(x, y, epochs=epochs, batch_size=64, verbose=0, callbacks=[
            BackupAndRestore(url, save_freq=7, delete_checkpoint=False)])

    fit(compiled(), 2)
    names = [o["Key"] for o in s3.list_objects_v2(Bucket="runs", Prefix="digits/")["Contents"]]
    assert "digits/latest.json" in names and any(n.endswith(".safetensors") for n in names)
    capfd.readouterr()
    resumed = compiled()
    history = fit(resumed, 4)
    assert "resuming from the backup: epoch 3/4" in capfd.readouterr().err
    whole = compiled()
    whole.fit(x, y, epochs=4, batch_size=64, verbose=0)
    assert history.epoch == [0, 1, 2, 3]
    for a, b in zip(resumed.get_weights(), whole.get_weights()):
        assert np.array_equal(a, b)
