variable "project_id" {
  description = "Project that hosts the dataset, connection, object table and model."
  type        = string
  nullable    = false
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
}

variable "dataset_id" {
  description = "Dataset that holds the object table, the model and the embeddings."
  type        = string
  nullable    = false
  default     = "bqml_tutorial"
}

variable "connection_id" {
  description = "Id of the cloud resource connection used by the object table and the remote model."
  type        = string
  nullable    = false
  default     = "embed_conn"
}

variable "object_table" {
  description = "Object table over the images: id, Cloud Storage URIs (gs://bucket/path/*), optional metadata cache and deletion protection."
  type = object({
    id          = optional(string, "images")
    source_uris = list(string)
    # Defaults are the object-table module's.
    metadata_cache = optional(object({
      enabled               = optional(bool)
      max_staleness_minutes = optional(number)
      mode                  = optional(string)
    }), {})
    deletion_protection = optional(bool, true)
  })
  nullable = false
}

variable "bucket_create" {
  description = "Optionally create the image bucket (see the object-table module for the fields and their defaults); its name must be one of the buckets in var.object_table.source_uris. Null uses existing buckets."
  type = object({
    name                       = string
    location                   = optional(string)
    storage_class              = optional(string)
    versioning                 = optional(bool)
    force_destroy              = optional(bool)
    soft_delete_retention_days = optional(number)
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

variable "connection_service_account_wait" {
  description = "How long to wait after the connection's service account is created before granting it roles (IAM can refuse an account in its first minutes). A duration such as 120s or 2m; null keeps the connection module's default (120s)."
  type        = string
  default     = null
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
