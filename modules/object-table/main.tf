locals {
  uri_pattern = "^gs://([a-z0-9][a-z0-9_.-]{1,220}[a-z0-9])/"
  # Buckets behind the URIs; try() keeps an invalid URI from adding a second,
  # less helpful error next to the variable's own validation message.
  buckets        = toset(compact([for u in var.source_uris : try(regex(local.uri_pattern, u)[0], "")]))
  created_bucket = var.bucket_create == null ? null : var.bucket_create.name
  # BigQuery takes staleness as an INTERVAL literal, "Y-M D H:M:S". Off is an explicit zero, not
  # null: max_staleness is Optional+Computed in the provider, so null would keep the old
  # staleness in state and send it again, without the metadata_cache_mode it then requires.
  cache_minutes = var.metadata_cache.max_staleness_minutes
  max_staleness = !var.metadata_cache.enabled ? "0-0 0 0:0:0" : format(
    "0-0 %d %d:%d:0",
    floor(local.cache_minutes / 1440),
    floor(local.cache_minutes % 1440 / 60),
    local.cache_minutes % 60
  )
}

resource "google_storage_bucket" "bucket" {
  count                       = var.bucket_create == null ? 0 : 1
  project                     = var.project_id
  name                        = var.bucket_create.name
  location                    = coalesce(var.bucket_create.location, var.dataset.location)
  storage_class               = var.bucket_create.storage_class
  force_destroy               = var.bucket_create.force_destroy
  labels                      = var.labels
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  versioning {
    enabled = var.bucket_create.versioning
  }

  soft_delete_policy {
    retention_duration_seconds = var.bucket_create.soft_delete_retention_days * 86400
  }

  dynamic "encryption" {
    for_each = var.bucket_create.encryption_key == null ? [] : [var.bucket_create.encryption_key]
    content {
      default_kms_key_name = encryption.value
    }
  }

  dynamic "logging" {
    for_each = var.bucket_create.log_bucket == null ? [] : [var.bucket_create.log_bucket]
    content {
      log_bucket = logging.value
    }
  }

  lifecycle {
    precondition {
      condition     = contains(local.buckets, var.bucket_create.name)
      error_message = "var.bucket_create.name (${var.bucket_create.name}) is not one of the buckets in var.source_uris (${join(", ", local.buckets)}): the object table would not read the bucket this module creates."
    }
  }
}

# Additive grant on each bucket the table reads: other members of the role are kept.
resource "google_storage_bucket_iam_member" "object_viewer" {
  for_each = var.grant_bucket_access ? local.buckets : toset([])
  # Referencing the created bucket orders the grant after its creation.
  bucket = each.key == local.created_bucket ? google_storage_bucket.bucket[0].name : each.key
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${var.connection.service_account}"
}

resource "google_bigquery_table" "table" {
  # checkov:skip=CKV_GCP_80: an object table stores no data in BigQuery, only metadata about objects; encrypt the objects with the bucket's key (var.bucket_create.encryption_key).
  project             = var.project_id
  dataset_id          = var.dataset.id
  table_id            = var.table_id
  description         = var.description
  labels              = var.labels
  deletion_protection = var.deletion_protection
  max_staleness       = local.max_staleness

  external_data_configuration {
    autodetect          = false
    object_metadata     = "SIMPLE"
    connection_id       = var.connection.id
    source_uris         = var.source_uris
    metadata_cache_mode = var.metadata_cache.enabled ? var.metadata_cache.mode : null
  }

  lifecycle {
    precondition {
      condition     = lower(var.connection.location) == lower(var.dataset.location)
      error_message = "The connection location (${var.connection.location}) must match the dataset location (${var.dataset.location}): an object table can only read through a connection in its dataset's location. Create the connection in ${var.dataset.location} or put the dataset in ${var.connection.location}."
    }
  }

  # The table is usable only once the connection can read the buckets.
  depends_on = [google_storage_bucket_iam_member.object_viewer, google_storage_bucket.bucket]
}
