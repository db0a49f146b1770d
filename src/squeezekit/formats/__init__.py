"""The files squeezekit writes and the runtime reads, with numpy (and ``onnx`` or LiteRT's schema) only:
the ``.sqz`` codec and its Huffman coding, the ONNX writer, and the model metadata inside or beside files."""
