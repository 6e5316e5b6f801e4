"""Named model entries (TOML data, one file per family). Installed as ``posezoo._entries``."""
