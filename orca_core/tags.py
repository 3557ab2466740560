"""The run tags Orca writes and reads: their names and values, defined once.

Tags are how the pieces find each other's runs: the run queue limits runs per `dagster/partition`, the
inbox sensor recognises a change an intake run already covers by its fingerprint, the run-status sensor
finds the run of each intake request, and `orca materialize` tells a run of a dead process by its pid.
"""

# Dagster's own: the partition (collection) a run writes; dagster.yaml limits runs per value to one.
PARTITION_TAG = "dagster/partition"

# Who asked for the run, one of the SOURCE_* values below.
SOURCE_TAG = "orca/source"
SOURCE_INBOX = "inbox"
SOURCE_INTAKE = "intake"
SOURCE_SCHEDULE = "schedule"
SOURCE_CLI = "orca materialize"
SOURCE_CLI_PURGE = "orca purge"

# What a job does (set by each job's definition): one of "embed", "purge", "prepare_model".
KIND_TAG = "orca/kind"

# The fingerprint of the inbox state a run was requested for (sensors/fingerprint.py).
FINGERPRINT_TAG = "orca/inbox_fingerprint"

# Intake requests a run serves: the oldest one's id (also the run key), and all of them comma-separated.
REQUEST_TAG = "orca/request_id"
REQUEST_IDS_TAG = "orca/request_ids"
# An embedding model asked for by the requests, when it differs from the configured one.
MODEL_TAG = "orca/model"

# A run executed in the `orca materialize` process has no run worker Dagster could check: these let a
# later command see that its process died.
PID_TAG = "orca/pid"
HOST_TAG = "orca/host"
