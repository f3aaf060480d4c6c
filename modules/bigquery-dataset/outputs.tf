output "dataset_id" {
  description = "Dataset id (the short name used in project.dataset.table references)."
  value       = google_bigquery_dataset.dataset.dataset_id
}

output "id" {
  description = "Fully qualified dataset id, projects/PROJECT/datasets/DATASET."
  value       = google_bigquery_dataset.dataset.id
}

output "location" {
  description = "Dataset location; the connection, object table, model and query jobs must use it."
  value       = google_bigquery_dataset.dataset.location
}

output "project_id" {
  description = "Project that owns the dataset."
  value       = google_bigquery_dataset.dataset.project
}
