"""Authport's Python client: `authport.client` (install with `pip install 'authport[client]'`)."""
