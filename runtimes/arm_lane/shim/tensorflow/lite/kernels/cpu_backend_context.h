// burn-edge ARM lane: forward the tensorflow/lite path LCE includes to the LiteRT header (or stand-in).
#pragma once
#include "tflite/kernels/cpu_backend_context.h"
