"""A training script as a user writes one, for the kill tests: the digits convnet from its
Keras JSON, Adam, 3 epochs of batches of 16, a backup every batch; writes the final weights
to OUT. Run again after a kill, it resumes from BACKUP. BACKUP `-`: no backup, 100 epochs.

    python3 train_script.py OUT BACKUP
"""
import sys

import wgfit
from wgfit.callbacks import BackupAndRestore

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from conftest import REPO, digits  # noqa: E402

SEED = 7

out, backup = sys.argv[1], sys.argv[2]
model = wgfit.Model.from_json((REPO / "tests/data/keras/digits_convnet.json").read_text())
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"],
              seed=SEED)
x, y = digits()
if backup == "-":
    print("training", flush=True)
    model.fit(x, y, epochs=100, batch_size=16, seed=SEED, verbose=0)
else:
    model.fit(x, y, epochs=3, batch_size=16, seed=SEED, verbose=0,
              callbacks=[BackupAndRestore(backup, save_freq=1)])
model.save(out)
