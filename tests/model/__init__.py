"""A model of the protocol, checked exhaustively with spin."""
