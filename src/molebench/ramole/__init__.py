"""The RAMoLE track: plan (the pool, checks), stages (retriever, router, mixed-task evaluation), report (its tables)."""
