"""``orizuru dashboard``: a web page over ``Queue`` for whoever is on call.

``command`` holds the CLI entry points and imports nothing optional until it runs,
so ``orizuru`` works without the ``dashboard`` extra; ``app`` is the Starlette app.
"""
