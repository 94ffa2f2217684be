"""OCR quality: character error rate on letters rendered at 300 dpi, clean and degraded.

    python bench/ocr.py

Prints one JSON object and writes bench/results/ocr.json. Uses the same extract_text() as intake.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from intake.scans import extract_text  # noqa: E402
from tests.letters import LETTER, cer, png_bytes, render  # noqa: E402

CASES: dict[str, dict[str, Any]] = {
    "clean": {},
    "skew_1deg": {"skew": 1.0},
    "skew_3deg": {"skew": 3.0},
    "speckle_5pct": {"noise": 0.05},
    "blur_2px": {"blur": 2.0},
    "skew_2deg_noise_3pct_blur_1px": {"skew": 2.0, "noise": 0.03, "blur": 1.0},
    "blur_5px": {"blur": 5.0},
}


def main() -> None:
    results = {}
    for name, kw in CASES.items():
        t = time.perf_counter()
        scan = extract_text(png_bytes(render(**kw)))
        results[name] = {"cer": round(cer(LETTER, scan.text), 4), "confidence": scan.confidence,
                         "seconds": round(time.perf_counter() - t, 2)}
    print(json.dumps(results, indent=2))
    (Path(__file__).parent / "results" / "ocr.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
