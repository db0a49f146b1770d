"""Deep Compression for SqueezeNet: pruning, k-means weight sharing, and the pipeline that writes ``.sqz`` files.

The numpy parts (:mod:`.sharing`, :mod:`.pruning`, :mod:`.api`) need no framework; the ``.sqz`` codec
itself is :mod:`squeezekit.formats.sqz`, which the runtime reads; :mod:`.finetune` needs Keras.
"""
