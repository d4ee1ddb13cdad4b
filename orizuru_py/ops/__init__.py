"""What operates a queue and is never on a message's path: the command line, the
operator's ``Queue`` handle, the live view, metrics, the dashboard, the demo, the
benchmark and the embedded server. Nothing in the queue's core imports from here."""
