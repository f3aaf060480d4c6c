locals {
  # Roles are granted additively: google_project_iam_binding would remove every
  # other member of the role in the project.
  roles = toset(concat(["roles/aiplatform.user"], var.additional_roles))
}

resource "google_bigquery_connection" "connection" {
  project       = var.project_id
  location      = var.location
  connection_id = var.connection_id
  friendly_name = var.friendly_name
  description   = var.description
  kms_key_name  = var.encryption_key
  # The service account is created by BigQuery and is output-only.
  cloud_resource {}
}

# BigQuery creates the service account with the connection, but IAM can refuse it for a
# while ("Service account ... does not exist"), and the provider retries that only when the
# policy's etag changed meanwhile. Every grant to the account (here, and through the
# service_account output, the object-table module's bucket grants) waits on this sleep.
# The account is a trigger: a new connection (new account) is waited for again.
resource "time_sleep" "service_account" {
  create_duration = var.service_account_wait
  triggers = {
    service_account = google_bigquery_connection.connection.cloud_resource[0].service_account_id
  }
}

resource "google_project_iam_member" "service_account" {
  for_each = local.roles
  project  = var.project_id
  role     = each.value
  member   = "serviceAccount:${time_sleep.service_account.triggers["service_account"]}"
}
