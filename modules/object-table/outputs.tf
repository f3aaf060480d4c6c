output "table" {
  description = "Object table as project.dataset.table, the form ML.GENERATE_EMBEDDING takes. Available once the connection's service account can read the buckets; IAM may still need a few minutes to propagate."
  value = join(".", [
    google_bigquery_table.table.project,
    google_bigquery_table.table.dataset_id,
    google_bigquery_table.table.table_id,
  ])
}

output "id" {
  description = "Full table resource id, projects/PROJECT/datasets/DATASET/tables/TABLE."
  value       = google_bigquery_table.table.id
}

output "buckets" {
  description = "Buckets the object table reads, derived from var.source_uris."
  value       = sort(local.buckets)
}
