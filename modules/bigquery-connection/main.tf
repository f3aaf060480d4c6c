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

resource "google_project_iam_member" "service_account" {
  for_each = local.roles
  project  = var.project_id
  role     = each.value
  member   = "serviceAccount:${google_bigquery_connection.connection.cloud_resource[0].service_account_id}"
}
