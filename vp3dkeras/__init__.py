"""VideoPose3D in Keras 3: temporal lifting of 2D keypoint tracks to 3D.

Kept import-light: import submodules (`vp3dkeras.models`, ...) explicitly. Keypoint layouts
and the dataset format, shared with the generator, live in the TF-free `posecontract` package.
"""
__version__ = "0.1.0"
