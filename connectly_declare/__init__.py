"""connectly-declare: Connectly campaign sendouts as reviewed, reproducible code."""

__version__ = "0.1.0"
