"""The flowforge command line."""
