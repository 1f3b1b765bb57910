"""The error contract: every failure answered as one problem shape (RFC 9457), named in words."""
