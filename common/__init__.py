"""The bottom package: user-facing errors and safe file writing. It imports nothing from train/export/runtimes.

Importing it applies the TensorFlow environment bootstrap (:func:`common.tfenv.configure`: legacy Keras, quiet
native logs) -- every entry point imports ``common`` before anything can import TensorFlow.
"""

from common.tfenv import configure as _configure_tensorflow_env

_configure_tensorflow_env()
