"""burn-edge training: binary ReActNet-A, float teacher, data, and the BURN engine."""
