"""Orca's REST intake: a FastAPI application that writes documents into the inbox and queues requests.

Serve it with `python -m orca_intake` (or `uvicorn orca_intake.app:create_app --factory`). It imports
`orca_resources` only: the sensors turn what it queues into Dagster runs.
"""
