"""Export a trained binary ReActNet-A to ONNX (``export.to_onnx``) and to Larq Compute Engine
(``export.to_lce``), with a converter audit (``export.audit``), an equivalence harness (``export.verify``)
and the Android demo's assets (``export.android_assets``). Export reads ``train``'s model and ``runtimes``'
file-format contract (:mod:`runtimes.format`); nothing below it imports export.

Library entry points (used by the verify harness):

* ``export.loading.load_model(path, arch=None, input_size=None, dataset=None) -> LoadedModel``
* ``export.onnx_graph.build_onnx(model, output="logits", upto=None, metadata=None) -> onnx.ModelProto``
* ``export.lce.build_keras(model, output="logits", upto=None, float_model=False) -> tf_keras.Model``
* ``export.lce.convert(keras_model) -> bytes`` / ``export.lce.convert_float(keras_model) -> bytes``
* running any exported file: ``runtimes.session.open_session(bytes_or_path, "lce-indirect")``
* ``export.audit.audit_flatbuffer(flatbuffer, model=None, kind="lce", upto=None) -> AuditReport``

Importing this package does not import TensorFlow.
"""
