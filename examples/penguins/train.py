"""Fit the penguins example's model and write model.json and training.csv beside this file.

The model lives in `streams.penguin_model` (the staged penguins stream scores its instances with it);
this script is its command line::

    python examples/penguins/train.py
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))  # the repo, for a run from a clone

from streams.penguin_model import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
