"""The network edge: the SSRF policy for URLs called on a user's behalf."""
