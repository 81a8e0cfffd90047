"""`python -m flows.cli`: the `retrain` console script."""

from flows.cli.main import main

raise SystemExit(main())
