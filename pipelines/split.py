"""`python -m pipelines.split SRC DST --val 0.15 --test 0.15`: see pipelines.data.split."""

import sys

from pipelines.data.split import main

if __name__ == "__main__":
    sys.exit(main())
