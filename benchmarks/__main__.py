"""``python -m benchmarks [--quick] [--only NAME] [--out DIR] [--device cpu|gpu]``."""

import sys

from benchmarks._harness import main

if __name__ == "__main__":
    sys.exit(main())
