"""ser-batch."""
