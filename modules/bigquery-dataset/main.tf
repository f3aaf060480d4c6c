resource "google_bigquery_dataset" "dataset" {
  project                    = var.project_id
  dataset_id                 = var.dataset_id
  location                   = var.location
  friendly_name              = var.friendly_name
  description                = var.description
  labels                     = var.labels
  max_time_travel_hours      = tostring(var.options.max_time_travel_hours)
  storage_billing_model      = var.options.storage_billing_model
  delete_contents_on_destroy = var.allow_destroy_with_contents

  dynamic "default_encryption_configuration" {
    for_each = var.encryption_key == null ? [] : [var.encryption_key]
    content {
      kms_key_name = default_encryption_configuration.value
    }
  }
}

# A warning, not an error: it makes the risk visible in every plan.
check "dataset_contents_protected" {
  assert {
    condition     = !var.allow_destroy_with_contents
    error_message = "var.allow_destroy_with_contents is true: destroying or replacing dataset ${var.dataset_id} will delete every table in it, including the embeddings."
  }
}
