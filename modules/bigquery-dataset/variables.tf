variable "project_id" {
  description = "Project that owns the dataset."
  type        = string
  nullable    = false
  validation {
    condition     = can(regex("^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "var.project_id must be a project id (6-30 characters: lowercase letters, digits and hyphens, starting with a letter), optionally domain-scoped as example.com:my-project."
  }
}

variable "dataset_id" {
  description = "Dataset id: letters, digits and underscores, at most 1024 characters."
  type        = string
  nullable    = false
  validation {
    condition     = can(regex("^[A-Za-z0-9_]+$", var.dataset_id)) && length(var.dataset_id) <= 1024
    error_message = "var.dataset_id must contain only letters, digits and underscores (no hyphens, dots or spaces) and be 1-1024 characters long."
  }
}

variable "location" {
  description = "Dataset location: the US or EU multi-region, or a region such as us-central1. The connection, object table, model and every query job must use the same location."
  type        = string
  nullable    = false
  default     = "US"
  validation {
    condition     = can(regex("^(US|EU|[a-z]+-[a-z]+[0-9]+)$", var.location))
    error_message = "var.location must be the US or EU multi-region (upper case) or a region name such as us-central1 or europe-west4."
  }
}

variable "friendly_name" {
  description = "Descriptive name shown in the console."
  type        = string
  default     = null
}

variable "description" {
  description = "Dataset description."
  type        = string
  default     = "Image embeddings generated with BigQuery ML. Managed by Terraform."
}

variable "labels" {
  description = "Labels applied to the dataset."
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

variable "options" {
  description = "Dataset options. max_time_travel_hours (48-168, a multiple of 24) is the window in which deleted or overwritten tables can be recovered; it defaults to the maximum so lost embeddings can be restored. storage_billing_model is LOGICAL or PHYSICAL (null keeps the BigQuery default)."
  type = object({
    max_time_travel_hours = optional(number, 168)
    storage_billing_model = optional(string)
  })
  nullable = false
  default  = {}
  validation {
    condition = (
      var.options.max_time_travel_hours >= 48 &&
      var.options.max_time_travel_hours <= 168 &&
      var.options.max_time_travel_hours % 24 == 0
    )
    error_message = "var.options.max_time_travel_hours must be a multiple of 24 between 48 and 168."
  }
  validation {
    condition     = var.options.storage_billing_model == null ? true : contains(["LOGICAL", "PHYSICAL"], var.options.storage_billing_model)
    error_message = "var.options.storage_billing_model must be LOGICAL, PHYSICAL or null."
  }
}

variable "allow_destroy_with_contents" {
  description = "When false (the default) BigQuery refuses to delete the dataset while it holds any table, so a `terraform destroy` or a replacement cannot drop the embeddings. Set to true only for throwaway setups: destroying then deletes every table in the dataset, including the ones Terraform does not manage (the model and the embeddings table)."
  type        = bool
  nullable    = false
  default     = false
}

variable "encryption_key" {
  description = "Optional Cloud KMS key (projects/P/locations/L/keyRings/R/cryptoKeys/K) used as the default encryption for new tables. The key must be in the dataset location and the BigQuery service agent needs roles/cloudkms.cryptoKeyEncrypterDecrypter on it."
  type        = string
  default     = null
  validation {
    condition     = var.encryption_key == null ? true : can(regex("^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$", var.encryption_key))
    error_message = "var.encryption_key must be a full Cloud KMS key id: projects/PROJECT/locations/LOCATION/keyRings/RING/cryptoKeys/KEY."
  }
}
