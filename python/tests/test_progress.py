"""Progress as Keras's `verbose`: a bar redrawn by carriage returns where sys.stdout shows
one (a terminal, checked through a pseudo-terminal, and a Jupyter notebook, checked with a
real kernel), the epochs' lines elsewhere, nothing at 0."""
import json
import sys
import textwrap
import types

import numpy as np

import wgfit


def mlp_json():
    import keras

    return keras.Sequential([keras.Input((64,)), keras.layers.Dense(16, activation="relu"),
                             keras.layers.Dense(10, activation="softmax")]).to_json()


def fit_printing(x, y, verbose):
    model = wgfit.Model.from_json(mlp_json())
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=2, batch_size=32, verbose=verbose)


def test_verbose_levels_where_lines_are_not_redrawn(capsys, digits_data):
    x, y = digits_data
    for verbose in (1, 2):
        fit_printing(x, y, verbose)
        out = capsys.readouterr().out
        assert "\r" not in out
        lines = out.splitlines()
        assert [line.split("  ")[0] for line in lines] == ["Epoch 1/2", "Epoch 2/2"], out
        assert all("57 batches" in line and "accuracy" in line for line in lines), out
    fit_printing(x, y, 0)
    assert capsys.readouterr().out == ""


def test_a_bar_where_lines_are_redrawn(capsys, monkeypatch, digits_data):
    x, y = digits_data
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    fit_printing(x, y, 1)
    out = capsys.readouterr().out
    assert "\rEpoch 1/2 [" in out and "] 57/57 " in out, repr(out)
    # Each epoch's line is written over its bar and ends the line.
    finals = [part for part in out.split("\r") if part.endswith("\n")]
    assert [f.split("  ")[0] for f in finals] == ["Epoch 1/2", "Epoch 2/2"], repr(out)
    fit_printing(x, y, 2)
    assert "\r" not in capsys.readouterr().out


def test_a_jupyter_kernel_shows_the_bar(tmp_path, digits_data):
    from jupyter_client.manager import start_new_kernel

    x, y = digits_data
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    (tmp_path / "model.json").write_text(mlp_json())
    code = textwrap.dedent(f"""
        import numpy as np, wgfit
        model = wgfit.Model.from_json(open({json.dumps(str(tmp_path / "model.json"))}).read())
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(np.load({json.dumps(str(tmp_path / "x.npy"))}),
                  np.load({json.dumps(str(tmp_path / "y.npy"))}), epochs=2, batch_size=32)
        """)
    manager, client = start_new_kernel(kernel_name="python3")
    try:
        reply = client.execute_interactive(code, timeout=300, output_hook=collect(streams := []))
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    assert reply["content"]["status"] == "ok", reply["content"]
    out = "".join(streams)
    assert "\rEpoch 1/2 [" in out and "] 57/57 " in out, repr(out)
    assert "Epoch 2/2  57 batches" in out and "loss " in out, repr(out)


def collect(streams):
    """An output hook keeping the text of the kernel's stdout stream messages."""
    def hook(message):
        if message["msg_type"] == "stream" and message["content"]["name"] == "stdout":
            streams.append(message["content"]["text"])
    return hook


def test_a_terminal_shows_the_bar(tmp_path, digits_data):
    """A script whose stdout is a pseudo-terminal draws the bar."""
    import os
    import pty
    import subprocess

    x, y = digits_data
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    (tmp_path / "model.json").write_text(mlp_json())
    script = textwrap.dedent("""
        import sys, numpy as np, wgfit
        d = sys.argv[1]
        model = wgfit.Model.from_json(open(d + "/model.json").read())
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(np.load(d + "/x.npy"), np.load(d + "/y.npy"), epochs=2, batch_size=32)
        """)
    main, secondary = pty.openpty()
    child = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=secondary,
                             stderr=subprocess.DEVNULL)
    os.close(secondary)
    out = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the terminal closed: the child ended
            break
        if not chunk:
            break
        out += chunk
    os.close(main)
    assert child.wait(timeout=300) == 0, out
    text = out.decode()
    assert "\rEpoch 1/2 [" in text and "] 57/57 " in text, repr(text)
    assert "Epoch 2/2  57 batches" in text, repr(text)
