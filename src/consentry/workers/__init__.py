"""Queue glue: the Celery application and the in-process runner, around services.dispatch."""
