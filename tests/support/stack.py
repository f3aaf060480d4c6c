"""Addresses of the root stack's resources, as its plans name them.

Tests that build plan documents by hand use these, so their plans look like the
stack's own; ``test_plan_review`` checks each against the stack's configuration.
"""

from __future__ import annotations

DATASET = "module.dataset.google_bigquery_dataset.dataset"
CONNECTION = "module.connection.google_bigquery_connection.connection"
WAIT = "module.connection.time_sleep.service_account"
AI_GRANT = 'module.connection.google_project_iam_member.service_account["roles/aiplatform.user"]'
BUCKET = "module.object-table.google_storage_bucket.bucket[0]"
BUCKET_GRANT = 'module.object-table.google_storage_bucket_iam_member.object_viewer["my-images-bucket"]'
TABLE = "module.object-table.google_bigquery_table.table"
SERVICE = 'module.project-services.google_project_service.services["bigquery.googleapis.com"]'
CONNECTION_SA = f"{CONNECTION}.cloud_resource[0].service_account_id"
