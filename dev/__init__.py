"""Development tools: run from a checkout, never installed with the package.

``dev.sitegen`` builds the offline snapshot of the IOM Albania site (``content.toml`` beside
it is its input) into ``src/iomfeed/demo/site/``, which the package ships.
"""
