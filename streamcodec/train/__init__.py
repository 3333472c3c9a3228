"""Corpus building and training recipes (imports nets, core and dsp; nothing imports train except
the CLI)."""
