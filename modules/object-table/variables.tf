variable "project_id" {
  description = "Project that owns the dataset, and the bucket when one is created."
  type        = string
  nullable    = false
  validation {
    condition     = can(regex("^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "var.project_id must be a project id (6-30 characters: lowercase letters, digits and hyphens, starting with a letter), optionally domain-scoped as example.com:my-project."
  }
}

variable "dataset" {
  description = "Dataset that receives the object table: its id and its location (the connection must be in the same location)."
  type = object({
    id       = string
    location = string
  })
  nullable = false
  validation {
    condition     = can(regex("^[A-Za-z0-9_]+$", var.dataset.id)) && length(var.dataset.id) <= 1024
    error_message = "var.dataset.id must contain only letters, digits and underscores and be 1-1024 characters long."
  }
  validation {
    condition     = can(regex("^(US|EU|[a-z]+-[a-z]+[0-9]+)$", var.dataset.location))
    error_message = "var.dataset.location must be the US or EU multi-region (upper case) or a region name such as us-central1."
  }
}

variable "table_id" {
  description = "Object table id: letters, digits, underscores and hyphens, at most 1024 characters."
  type        = string
  nullable    = false
  default     = "images"
  validation {
    condition     = can(regex("^[A-Za-z0-9_-]+$", var.table_id)) && length(var.table_id) <= 1024
    error_message = "var.table_id must contain only letters, digits, underscores and hyphens and be 1-1024 characters long."
  }
}

variable "connection" {
  description = "Cloud resource connection the table reads objects through: id (projects/P/locations/L/connections/C or P.L.C), location (must equal var.dataset.location) and service_account (email; it is granted roles/storage.objectViewer on every bucket behind var.source_uris)."
  type = object({
    id              = string
    location        = string
    service_account = string
  })
  nullable = false
  validation {
    condition = (
      can(regex("^projects/[^/]+/locations/[^/]+/connections/[a-zA-Z0-9_-]+$", var.connection.id)) ||
      can(regex("^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]\\.[a-zA-Z0-9-]+\\.[a-zA-Z0-9_-]+$", var.connection.id))
    )
    error_message = "var.connection.id must be projects/PROJECT/locations/LOCATION/connections/ID or PROJECT.LOCATION.ID."
  }
}

variable "source_uris" {
  description = "Cloud Storage URIs of the objects, for example gs://my-images-bucket/photos/*. Each names a bucket and may contain one '*' wildcard after it."
  type        = list(string)
  nullable    = false
  validation {
    condition     = length(var.source_uris) > 0
    error_message = "var.source_uris must contain at least one gs:// URI, for example gs://my-images-bucket/photos/*."
  }
  validation {
    condition = alltrue([
      for u in var.source_uris :
      can(regex("^gs://[a-z0-9][a-z0-9_.-]{1,220}[a-z0-9]/[^*]*\\*?[^*]*$", u))
    ])
    error_message = "var.source_uris: every URI must start with gs:// followed by a bucket name and a path, with at most one '*' wildcard, e.g. gs://my-images-bucket/photos/*. Invalid: ${join(", ", [for u in var.source_uris : u if !can(regex("^gs://[a-z0-9][a-z0-9_.-]{1,220}[a-z0-9]/[^*]*\\*?[^*]*$", u))])}."
  }
}

variable "metadata_cache" {
  description = "Metadata caching. Off by default: every query lists the bucket. When enabled, max_staleness_minutes (30 minutes to 7 days) is how stale cached object metadata may be, and mode is AUTOMATIC (BigQuery refreshes the cache) or MANUAL (refresh with CALL BQ.REFRESH_EXTERNAL_METADATA_CACHE)."
  type = object({
    enabled               = optional(bool, false)
    max_staleness_minutes = optional(number, 240)
    mode                  = optional(string, "AUTOMATIC")
  })
  nullable = false
  default  = {}
  validation {
    condition = !var.metadata_cache.enabled || (
      var.metadata_cache.max_staleness_minutes >= 30 &&
      var.metadata_cache.max_staleness_minutes <= 10080 &&
      floor(var.metadata_cache.max_staleness_minutes) == var.metadata_cache.max_staleness_minutes
    )
    error_message = "var.metadata_cache.max_staleness_minutes must be a whole number of minutes between 30 and 10080 (7 days) when the cache is enabled."
  }
  validation {
    condition     = !var.metadata_cache.enabled || contains(["AUTOMATIC", "MANUAL"], var.metadata_cache.mode)
    error_message = "var.metadata_cache.mode must be AUTOMATIC or MANUAL when the cache is enabled."
  }
}

variable "deletion_protection" {
  description = "Protect the table from terraform destroy and replacement. The object table holds only object metadata (it can be recreated from the bucket) but the model queries and embedding jobs reference it by name, so it stays on by default, like the provider's own default; set false for throwaway setups."
  type        = bool
  nullable    = false
  default     = true
}

variable "description" {
  description = "Table description."
  type        = string
  default     = "Object table over the images to embed. Managed by Terraform."
}

variable "labels" {
  description = "Labels applied to the table, and to the bucket when one is created."
  type        = map(string)
  nullable    = false
  default     = {}
  validation {
    condition = alltrue([
      for k, v in var.labels :
      can(regex("^[a-z][a-z0-9_-]{0,62}$", k)) && can(regex("^[a-z0-9_-]{0,63}$", v))
    ])
    error_message = "var.labels: keys must start with a lowercase letter and use only lowercase letters, digits, '_' and '-' (at most 63 characters); values may use the same characters (at most 63)."
  }
}

variable "grant_bucket_access" {
  description = "Grant roles/storage.objectViewer (additively) to the connection's service account on every bucket behind var.source_uris. Turn off only when access is managed elsewhere."
  type        = bool
  nullable    = false
  default     = true
}

variable "bucket_create" {
  description = "Optionally create the image bucket. Its name must be one of the buckets in var.source_uris; location defaults to the dataset location. Uniform bucket-level access and public access prevention are always on."
  type = object({
    name                       = string
    location                   = optional(string)
    storage_class              = optional(string, "STANDARD")
    versioning                 = optional(bool, true)
    force_destroy              = optional(bool, false)
    soft_delete_retention_days = optional(number, 7)
    encryption_key             = optional(string)
    log_bucket                 = optional(string)
  })
  default = null
  validation {
    condition     = var.bucket_create == null ? true : can(regex("^[a-z0-9][a-z0-9_.-]{1,220}[a-z0-9]$", var.bucket_create.name))
    error_message = "var.bucket_create.name must be a valid bucket name: lowercase letters, digits, '-', '_' and '.', starting and ending with a letter or digit."
  }
  validation {
    condition     = var.bucket_create == null ? true : contains(["STANDARD", "NEARLINE", "COLDLINE", "ARCHIVE"], var.bucket_create.storage_class)
    error_message = "var.bucket_create.storage_class must be STANDARD, NEARLINE, COLDLINE or ARCHIVE."
  }
  validation {
    condition = var.bucket_create == null ? true : (
      var.bucket_create.soft_delete_retention_days == 0 ||
      (var.bucket_create.soft_delete_retention_days >= 7 && var.bucket_create.soft_delete_retention_days <= 90)
    )
    error_message = "var.bucket_create.soft_delete_retention_days must be 0 (disabled) or between 7 and 90."
  }
}
