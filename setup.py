"""vp3dkeras + synth: 3D human pose estimation in video (VideoPose3D in Keras 3) and the
synthetic-data generator that feeds it."""
from setuptools import find_packages, setup

setup(
    name="vp3dkeras",
    version="0.1.0",
    description="VideoPose3D in Keras 3 and a mocap-to-dataset generator",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["posecontract", "posecontract.*", "synth", "synth.*",
                                    "vp3dkeras", "vp3dkeras.*"]),
    package_data={"synth": ["data/joint_maps/*.json"],
                  "vp3dkeras": ["data/calibrations/*.json"]},
    python_requires=">=3.10",
    install_requires=[
        # TF 2.21 accepts numpy>=1.26; pyrender 0.1.45 needs an np.infty alias on numpy 2
        # (synth.rendering provides it).
        "numpy>=1.26,<3",
        "scipy>=1.14",
        "tensorflow>=2.16",
        "keras>=3.3,<4",
        "bvhio==1.5.4",
        "trimesh>=4",
        # pyrender pins PyOpenGL 3.1.0 (EGL works with it; OSMesa needs 3.1.10 installed
        # afterwards with --no-deps, which scripts/setup_env.sh does).
        "pyrender==0.1.45",
        "pillow>=10",
        "tqdm>=4.60",
        "matplotlib>=3.7",
        "tensorboard>=2.16",  # TensorBoard logs of training runs (tf.summary needs it)
        "pyyaml>=6",  # experiment configs (vp3dkeras.config) in YAML
        # Datasets at URLs (synth.storage; s3fs/gcsfs/adlfs for cloud stores are the user's
        # install) and TFRecord shards without TensorFlow (posecontract.shard_format).
        "fsspec>=2023.1",
        "protobuf>=4.22",
        "google-crc32c>=1.5",
    ],
    extras_require={
        # Anny parametric bodies (synth.bodies; the default of synth.render). Anny needs
        # PyTorch: scripts/setup_env.sh installs the CPU wheel first, so pip keeps it.
        "bodies": ["anny>=0.6.2"],
        "torch": ["torch>=2.1"],  # reading VideoPose3D .bin checkpoints
        "jax": ["jax>=0.4.30"],  # also the multi-worker training path (keras.distribution)
        "ray": ["ray>=2.9"],  # python -m synth.render --engine ray
        "dev": ["pytest>=7", "pytest-xdist>=3"],
    },
)
