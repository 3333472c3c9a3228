"""Small data files shipped with the package (the demo's speech sample)."""
