"""The contract between the generator (`synth`) and the model (`vp3dkeras`).

Keypoint layouts (names, parents, left/right pairs, joint groups), keypoint conventions (where
each keypoint of Human3.6M, COCO, HumanEva-I lies on a body: `posecontract.conventions`) and
the dataset format (manifest, records and their per-convention keys, splits; in a folder or
at an fsspec URL: `posecontract.dataset_format`) and the sharded format (TFRecord framing,
record payloads, index: `posecontract.shard_format`) are defined here once. Pure Python/NumPy: importing this
package never pulls in TensorFlow, Keras, the renderer or PyTorch, so both sides import it
and neither imports the other.
"""
