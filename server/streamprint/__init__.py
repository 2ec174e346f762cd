"""streamprint: streaming media fingerprints over gRPC."""

__version__ = "0.1.0"
