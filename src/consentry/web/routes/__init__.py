"""API routers; each route parses input, calls one service function and maps the result."""
