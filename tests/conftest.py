"""Puts both homework trees and the repository root on the import path.

Each homework runs from its own folder (`cd GAN_homework && python train.py`), so its modules
import each other by their top-level names (`training.loss`, `scheduler.DDPM_scheduler`).
The two trees use distinct top-level names, so both can be imported in one test session.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "GAN_homework", ROOT / "Diffusion_homework"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
