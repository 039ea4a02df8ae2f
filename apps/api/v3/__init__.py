"""The Copr-compatible API, /api_3/: copr-cli, python-copr and `dnf copr` work unmodified."""
