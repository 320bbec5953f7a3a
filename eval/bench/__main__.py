"""`python -m eval.bench`: the benchmark suite, as `rag bench`."""

import sys

from eval.bench.suite import main

sys.exit(main())
