"""Fault injection: real processes, a real server, and counts that must come out exact."""
