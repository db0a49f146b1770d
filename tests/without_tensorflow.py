"""Run squeezekit's command line as on a machine without TensorFlow: ``python without_tensorflow.py ARGS``.

TensorFlow (and what only comes with it) is hidden from the import system, so ``find_spec`` answers None
and ``import tensorflow`` fails exactly as where it is not installed. Exits with the command's status,
or 3 if anything imported TensorFlow after all.
"""

import importlib.machinery
import sys

HIDDEN = {"tensorflow", "tf_keras", "tensorboard"}


class WithoutTensorFlow:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.partition(".")[0] in HIDDEN:
            return None
        return importlib.machinery.PathFinder.find_spec(name, path, target)

    @staticmethod
    def invalidate_caches():
        importlib.machinery.PathFinder.invalidate_caches()


sys.meta_path[:] = [WithoutTensorFlow if finder is importlib.machinery.PathFinder else finder for finder in sys.meta_path]

if __name__ == "__main__":
    from squeezekit.cli.main import main

    status = main(sys.argv[1:])
    leaked = sorted(name for name in sys.modules if name.partition(".")[0] in HIDDEN)
    if leaked:
        print(f"imported without TensorFlow: {leaked[:5]}", file=sys.stderr)
        sys.exit(3)
    sys.exit(status)
