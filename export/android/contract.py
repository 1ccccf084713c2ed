"""What the app reads (``org.burnedge.demo.logic.ModelMetadata``): the assets folder's file names and the
``metadata.json`` schema, version 1::

    {"format": "burn-edge/android-assets", "version": 1,
     "input": {"layout": "NHWC", "dtype": "float32", "batch": 1, "height": S, "width": S, "channels": 3,
               "color": "RGB", "scale": 1/255, "mean": [3 floats], "std": [3 floats],
               "formula": "x[h][w][c] = (u8[h][w][c] * scale - mean[c]) / std[c] in float32"},
     "output": {"kind": "logits", "num_classes": K},
     "class_names": [K strings], "labels_file": "labels.txt",
     "models": {"lce": {"file", "bytes", "sha256", "source"} | null, "float": {...} | null},
     "samples": [{"file": "samples/00_0.png", "label": "0"}, ...],
     "arch": {ReActNetConfig as a dict}, "source_checkpoint": {"file", "sha256"}, "created_utc": "..."}

The formula is ``train.data.eval_transform`` (torchvision ``ToDtype(float32, scale=True)`` then ``Normalize``)
without resizing; ``tests/android`` checks that the Java preprocessing equals it to 1e-6.
"""

FORMAT = "burn-edge/android-assets"
VERSION = 1
METADATA_FILE = "metadata.json"
LABELS_FILE = "labels.txt"
SAMPLES_DIR = "samples"
MODEL_FILES = {"lce": "model_lce.tflite", "float": "model_float.tflite"}
SCALE = 1.0 / 255.0
FORMULA = "x[h][w][c] = (u8[h][w][c] * scale - mean[c]) / std[c] in float32"
