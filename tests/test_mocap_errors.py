"""Broken mocap files raise `MocapError` naming the file and the problem (never hang)."""
import re

import pytest

from synth import bvh, mocap_io
from synth.motion import MocapError


@pytest.fixture(scope="module")
def cmu_text(cmu_dir):
    return ((cmu_dir / "02" / "02.asf").read_text(encoding="latin-1"),
            (cmu_dir / "02" / "02_01.amc").read_text(encoding="latin-1"))


@pytest.fixture(scope="module")
def bvh_text(bvh_dir):
    lines = (bvh_dir / "01_01.bvh").read_text().splitlines()
    end = next(i for i, line in enumerate(lines) if line.startswith("Frame Time"))
    return "\n".join(lines[:end + 1]).replace("Frames: 2752", "Frames: 12"), lines[end + 1:
                                                                                      end + 13]


def _first_frames(amc: str, count: int) -> str:
    """The AMC header and its first `count` frames."""
    lines = amc.splitlines()
    cut = next(i for i, line in enumerate(lines) if line.strip() == str(count + 1))
    return "\n".join(lines[:cut]) + "\n"


def _acclaim_case(tmp_path, asf: str, amc: str):
    folder = tmp_path / "02"
    folder.mkdir(exist_ok=True)
    (folder / "02.asf").write_text(asf, encoding="latin-1")
    (folder / "02_01.amc").write_text(amc, encoding="latin-1")
    return folder / "02_01.amc"


def _expect(path, problem: str, bad_file=None):
    with pytest.raises(MocapError) as info:
        mocap_io.load_motion(path)
    message = str(info.value)
    assert str(bad_file or path) in message, message
    assert re.search(problem, message), message
    return info.value


def _line_of(lines, frame: int, bone: str) -> int:
    start = lines.index(str(frame))
    return next(i for i in range(start, len(lines)) if lines[i].split()[0] == bone)


def _edited(lines, frame: int, bone: str, new_line):
    lines = list(lines)
    i = _line_of(lines, frame, bone)
    lines[i:i + 1] = [] if new_line is None else [new_line]
    return "\n".join(lines) + "\n"


def _amc_cases(amc):
    short = _first_frames(amc, 5)
    lines = short.splitlines()
    yield "truncated", short[:short.rindex("lfemur")], r"frame 5.*missing.*truncated"
    yield "missing bone", _edited(lines, 2, "lfemur", None), r"frame 2: bone 'lfemur' missing"
    yield ("nan", _edited(lines, 3, "upperneck", "upperneck nan 1 2"),
           r"value 'nan' in frame 3 \(bone 'upperneck'\)")
    yield ("not a number", _edited(lines, 3, "lowerback", "lowerback 1 x2 3"),
           r"value 'x2' in frame 3.*not a number")
    yield ("value count", _edited(lines, 3, "lowerback", "lowerback 1 2"),
           r"frame 3: bone 'lowerback' has 2 values")
    yield "unknown bone", short.replace("lowerback", "tail", 1), r"bone 'tail' is not in"
    yield "frame jump", short.replace("\n4\n", "\n7\n"), r"frame numbers jump from 3 to 7"
    yield "no frames", _first_frames(amc, 0), r"no frames"
    yield "empty", "", r"empty file"


@pytest.mark.parametrize("case", ["truncated", "missing bone", "nan", "not a number",
                                  "value count", "unknown bone", "frame jump", "no frames",
                                  "empty"])
def test_broken_amc(case, cmu_text, tmp_path):
    asf, amc = cmu_text
    text, problem = next((t, p) for name, t, p in _amc_cases(amc) if name == case)
    _expect(_acclaim_case(tmp_path, asf, text), problem)


@pytest.mark.parametrize("case,edit,problem", [
    ("unknown length units", ("length 0.45", "length furlong"), r"unknown units 'furlong'"),
    ("unknown angle units", ("angle deg", "angle furlong"), r"unknown units 'furlong'"),
    ("no bonedata", (":bonedata", ":bonesdata"), r"no :bonedata section"),
    ("bad dof", ("dof rx ry rz", "dof rx rw rz"), r"dof 'rx rw rz' not understood"),
    ("bad axis order", ("axis 0 0 20  XYZ", "axis 0 0 20  XYQ"), r"'XYQ' is not a permutation"),
    ("unknown child", ("lfemur ltibia", "lfemur lshin"), r"unknown bone 'lshin'"),
    ("truncated", None, r"no :hierarchy section"),
    ("empty", ("", ""), r"empty file"),
])
def test_broken_asf(case, edit, problem, cmu_text, tmp_path):
    asf, amc = cmu_text
    if case == "empty":
        asf = ""
    elif edit is None:
        asf = asf[:asf.index(":hierarchy")]
    else:
        assert edit[0] in asf
        asf = asf.replace(edit[0], edit[1], 1)
    path = _acclaim_case(tmp_path, asf, _first_frames(amc, 2))
    _expect(path, problem, bad_file=path.parent / "02.asf")


def test_missing_skeleton_and_unknown_type(tmp_path):
    (tmp_path / "05_01.amc").write_text("1\nroot 0 0 0 0 0 0\n")
    _expect(tmp_path / "05_01.amc", r"skeleton file 05\.asf not found")
    (tmp_path / "clip.c3d").write_text("x")
    _expect(tmp_path / "clip.c3d", r"unknown mocap file type '\.c3d'")
    _expect(tmp_path / "absent.bvh", r"file not found")


def _bvh_cases(header, rows):
    body = "\n".join(rows)
    yield "bad channel", header.replace("Xrotation", "Wrotation", 1) + "\n" + body, \
        r"BVH channel 'Wrotation' of joint 'Hips' not understood"
    yield "fewer rows", header + "\n" + "\n".join(rows[:10]), \
        r"motion has 10 rows but header says 12 frames"
    yield "short row", header + "\n" + body.replace(rows[3], rows[3].rsplit(" ", 2)[0], 1), \
        r"motion row 4 has \d+ values, the hierarchy declares 96 channels"
    nan_rows = list(rows)
    nan_rows[2] = " ".join(["nan"] + rows[2].split()[1:])
    yield "nan", header + "\n" + "\n".join(nan_rows), r"value 'nan' in frame 3"
    yield "no motion", header[:header.index("MOTION")], r"no MOTION section"
    yield "bad hierarchy", header.replace("OFFSET 0 0 0", "OFFSET 0 0", 1) + "\n" + body, \
        r"hierarchy not understood"
    yield "empty", "  \n", r"empty file"


@pytest.mark.parametrize("case", ["bad channel", "fewer rows", "short row", "nan", "no motion",
                                  "bad hierarchy", "empty"])
def test_broken_bvh(case, bvh_text, tmp_path):
    header, rows = bvh_text
    text, problem = next((t, p) for name, t, p in _bvh_cases(header, rows) if name == case)
    path = tmp_path / "broken.bvh"
    path.write_text(text)
    _expect(path, problem)


def test_bvh_reader_accepts_the_unbroken_corpus_base(bvh_text, tmp_path):
    header, rows = bvh_text
    path = tmp_path / "ok.bvh"
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    assert bvh.read_bvh(path).num_frames == 12
