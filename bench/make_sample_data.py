"""Build engine/sample_data/ from the shared real data: rows copied byte for byte, gzip-compressed.

Ships 6 symbols of the Binance USDT-M 1h common window with their funding prints, so that a fresh
install runs `qctl backtest` offline. Also copies examples/legacy_policy.toml (the default policy of
`qctl backtest`) next to them. Run from the repository root:

    .venv/bin/python bench/make_sample_data.py [--src ../shared/data]
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import sys
from pathlib import Path

SYMBOLS = ("BTC", "ETH", "SOL", "XRP", "DOGE", "LINK")
REPO = Path(__file__).resolve().parent.parent
DEST = REPO / "engine" / "sample_data"


def _gzip_copy(src: Path, dst: Path) -> int:
    """Compress `src` unchanged into `dst` (mtime 0 so the output is reproducible)."""
    data = src.read_bytes()
    dst.parent.mkdir(parents=True, exist_ok=True)
    with (
        open(dst, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz,
    ):
        gz.write(data)
    if gzip.decompress(dst.read_bytes()) != data:
        raise SystemExit(f"round-trip check failed for {dst}")
    return dst.stat().st_size


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=REPO.parent / "shared" / "data")
    args = ap.parse_args(argv)
    total = 0
    for base in SYMBOLS:
        pairs = (
            (f"ohlcv/binance_usdm_{base}-USDT_1h.csv", "ohlcv"),
            (f"funding/binance_usdm_{base}-USDT_8h_funding.csv", "funding"),
        )
        for rel, sub in pairs:
            src = args.src / rel
            if not src.is_file():
                print(f"missing source file: {src}", file=sys.stderr)
                return 1
            total += _gzip_copy(src, DEST / sub / (src.name + ".gz"))
    policy = REPO / "examples" / "legacy_policy.toml"
    if policy.is_file():
        shutil.copyfile(policy, DEST / "legacy_policy.toml")
        print(f"copied {policy.relative_to(REPO)} -> engine/sample_data/legacy_policy.toml")
    else:
        print(f"note: {policy} not found; default policy not copied", file=sys.stderr)
    print(f"wrote {len(SYMBOLS) * 2} files, {total / 1e6:.2f} MB, into {DEST.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
