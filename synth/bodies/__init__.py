"""Realistic, varied human bodies for the generator (Anny parametric bodies).

    population.py  seeded sampling of body specs from published anthropometry (NumPy)
    anny_build.py  builds specs into meshes, joints and landmarks with Anny (own process)
    cache.py       the body cache: plain .npz files checked by SHA-256 (NumPy)
    body.py        `AnnyBody`: a cached body behind the `synth.avatars.Avatar` interface

Only `anny_build` imports PyTorch/Warp; it runs in `python -m synth.bodies build`.
"""
