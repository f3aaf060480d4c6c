locals {
  # The project.location.connection_id form taken by CREATE MODEL ... REMOTE WITH CONNECTION.
  connection_ref = join(".", [
    google_bigquery_connection.connection.project,
    lower(google_bigquery_connection.connection.location),
    google_bigquery_connection.connection.connection_id,
  ])
}

output "connection" {
  description = "Connection as project.location.connection_id, the form CREATE MODEL ... REMOTE WITH CONNECTION takes. Available once the service account holds its roles; IAM may still need a few minutes to propagate."
  value       = local.connection_ref
  depends_on  = [google_project_iam_member.service_account]
}

output "id" {
  description = "Full connection resource id, projects/PROJECT/locations/LOCATION/connections/ID. Available once the service account holds its roles."
  value       = google_bigquery_connection.connection.id
  depends_on  = [google_project_iam_member.service_account]
}

output "location" {
  description = "Connection location."
  value       = google_bigquery_connection.connection.location
}

output "service_account" {
  description = "Email of the service account BigQuery created for the connection (known after apply), available once var.service_account_wait has passed since its creation, so grants made with it do not meet an account IAM does not know yet. Grant it read access to the image buckets."
  value       = time_sleep.service_account.triggers["service_account"]
}
