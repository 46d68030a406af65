"""The HTTP service: FastAPI app factory, API routers, one error mapping."""
