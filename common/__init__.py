"""The bottom package: user-facing errors and safe file writing. It imports nothing from train/export/runtimes."""
