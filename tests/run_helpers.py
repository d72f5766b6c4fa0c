"""Settings shared by the tests that train: tiny runs on the tiny real dataset."""

#: Training options of the tiny runs: a 9-frame, 16-channel model, small batches.
TINY_TRAINING = ["--split", "actor_out_hdm05_mm", "--filter-widths", "3,3", "--channels", "16",
                 "--batch-size", "32", "--val-windows", "64", "--lr", "1e-2", "--quiet"]
