"""How much of a corpus a reference scan (`injection.reference`) reads by default. Light (no
numpy, no pyarrow), so the CLI's help shows these numbers without importing the scan."""

# ~50 s on one core at ~2M tokens/s: a reference of tens of thousands of statements
DEFAULT_MAX_TOKENS = 100_000_000
SHARD_TOKENS = 2**23  # tokens a shard starts documents in: ~4 s of one core each
