"""Ray Train trainables, each a plain-PyTorch numerical core plus a thin Ray layer."""
