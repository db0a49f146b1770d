"""Deep Compression for SqueezeNet: pruning, k-means weight sharing, Huffman coding and the ``.sqz`` file.

The numpy parts (:mod:`.sqz`, :mod:`.huffman`, :mod:`.sharing`, :mod:`.pruning`, :mod:`.api`) need no
framework, so the TensorFlow-free runtime can read ``.sqz`` files; :mod:`.finetune` needs Keras.
"""

from squeezekit.compression.sqz import SqzFormatError, SqzModel, read_sqz, write_sqz

__all__ = ["SqzFormatError", "SqzModel", "read_sqz", "write_sqz"]
