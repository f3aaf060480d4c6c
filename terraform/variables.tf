variable "project_id" {
  description = "Project that hosts the dataset, connection, object table and model."
  type        = string
  nullable    = false
  validation {
    condition     = can(regex("^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "var.project_id must be a project id (6-30 characters: lowercase letters, digits and hyphens, starting with a letter), optionally domain-scoped as example.com:my-project, not a project name or number."
  }
}

variable "region" {
  description = "Default region of the google provider. BigQuery resources use var.location instead."
  type        = string
  nullable    = false
  default     = "us-central1"
  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "var.region must be a region name such as us-central1 or europe-west4."
  }
}

variable "location" {
  description = "BigQuery location of the dataset, connection, object table and model, and where query jobs run: US or EU multi-region, or a region such as us-central1."
  type        = string
  nullable    = false
  default     = "US"
  validation {
    condition     = can(regex("^(US|EU|[a-z]+-[a-z]+[0-9]+)$", var.location))
    error_message = "var.location must be the US or EU multi-region (upper case) or a region name such as us-central1 or europe-west4."
  }
}

variable "dataset_id" {
  description = "Dataset that holds the object table, the model and the embeddings."
  type        = string
  nullable    = false
  default     = "bqml_tutorial"
  validation {
    condition     = can(regex("^[A-Za-z0-9_]+$", var.dataset_id)) && length(var.dataset_id) <= 1024
    error_message = "var.dataset_id must contain only letters, digits and underscores and be 1-1024 characters long."
  }
}

variable "connection_id" {
  description = "Id of the cloud resource connection used by the object table and the remote model."
  type        = string
  nullable    = false
  default     = "embed_conn"
  validation {
    condition     = can(regex("^[a-zA-Z0-9_-]+$", var.connection_id)) && length(var.connection_id) <= 1024
    error_message = "var.connection_id must contain only letters, digits, underscores and hyphens and be 1-1024 characters long."
  }
}

variable "object_table" {
  description = "Object table over the images: id, Cloud Storage URIs (gs://bucket/path/*), optional metadata cache and deletion protection."
  type = object({
    id          = optional(string, "images")
    source_uris = list(string)
    metadata_cache = optional(object({
      enabled               = optional(bool, false)
      max_staleness_minutes = optional(number, 240)
      mode                  = optional(string, "AUTOMATIC")
    }), {})
    deletion_protection = optional(bool, true)
  })
  nullable = false
  validation {
    condition     = length(var.object_table.source_uris) > 0 && alltrue([for u in var.object_table.source_uris : startswith(u, "gs://")])
    error_message = "var.object_table.source_uris must list at least one Cloud Storage URI, each starting with gs://, e.g. gs://my-images-bucket/photos/*."
  }
}

variable "bucket_create" {
  description = "Optionally create the image bucket (see the object-table module); its name must be one of the buckets in var.object_table.source_uris. Null uses existing buckets."
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
}

variable "model_id" {
  description = "Name of the remote model the Python layer creates (CREATE MODEL ... REMOTE WITH CONNECTION)."
  type        = string
  nullable    = false
  default     = "embedding_model"
  validation {
    condition     = can(regex("^[A-Za-z0-9_]+$", var.model_id)) && length(var.model_id) <= 1024
    error_message = "var.model_id must contain only letters, digits and underscores and be 1-1024 characters long."
  }
}

variable "endpoint" {
  description = "Vertex AI endpoint of the remote model. Only the multimodal embedding model embeds images."
  type        = string
  nullable    = false
  default     = "multimodalembedding@001"
  validation {
    condition     = can(regex("^multimodalembedding(@[0-9]{3})?$", var.endpoint))
    error_message = "var.endpoint must be a multimodal embedding endpoint such as multimodalembedding@001: text embedding models cannot embed images."
  }
}

variable "results_table_id" {
  description = "Table the Python layer writes embeddings to (it is not managed by Terraform, so destroying the stack never drops it)."
  type        = string
  nullable    = false
  default     = "image_embeddings"
  validation {
    condition     = can(regex("^[A-Za-z0-9_-]+$", var.results_table_id)) && length(var.results_table_id) <= 1024
    error_message = "var.results_table_id must contain only letters, digits, underscores and hyphens and be 1-1024 characters long."
  }
}

variable "allow_destroy_with_contents" {
  description = "Let terraform destroy delete the dataset with every table in it, including the model and the embeddings. Keep false outside throwaway setups."
  type        = bool
  nullable    = false
  default     = false
}

variable "connection_additional_roles" {
  description = "Extra project roles for the connection's service account, on top of roles/aiplatform.user."
  type        = list(string)
  nullable    = false
  default     = []
}

variable "labels" {
  description = "Labels applied to the dataset, the object table and a created bucket."
  type        = map(string)
  nullable    = false
  default     = {}
}
