"""The contract between the generator (`synth`) and the model (`vp3dkeras`).

Keypoint layouts (names, parents, left/right pairs, joint groups) and the on-disk dataset
format (manifest, records, splits) are defined here once. Pure Python/NumPy: importing this
package never pulls in TensorFlow, Keras, the renderer or PyTorch, so both sides import it
and neither imports the other.
"""
