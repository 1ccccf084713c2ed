"""The Android demo app's assets, one job per module (the CLI is ``python -m export.android_assets``).

* :mod:`.contract`: file names and the ``metadata.json`` schema the app reads;
* :mod:`.checks`: the given models are TFLite files that load and run (tested once in a child process) and
  whose exporter metadata agrees with the assets;
* :mod:`.samples`: bundled sample images (digits test split) and their file names;
* :mod:`.writer`: :func:`~export.android.writer.write_android_assets` copies models, writes labels, samples and
  ``metadata.json``, every file atomically.
"""
