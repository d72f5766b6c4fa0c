"""VideoPose3D in Keras 3: temporal lifting of 2D keypoint tracks to 3D.

Kept import-light: `vp3dkeras.layouts` is pure NumPy and is used by the synth package,
which must never import TensorFlow. Import submodules (`vp3dkeras.models`, ...) explicitly.
"""
__version__ = "0.1.0"
