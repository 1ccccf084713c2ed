from tests.runtimes.conftest import all_models, float_tflite_model, lce_model, model_dir, onnx_model  # noqa: F401
