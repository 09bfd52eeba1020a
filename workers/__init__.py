"""Workers: the Celery app, beat schedule and thin task wrappers (the Workers issue)."""
