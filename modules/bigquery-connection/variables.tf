variable "project_id" {
  description = "Project that owns the connection. roles/aiplatform.user is granted here too, so it must be the project where the remote model is created."
  type        = string
  nullable    = false
  validation {
    condition     = can(regex("^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "var.project_id must be a project id (6-30 characters: lowercase letters, digits and hyphens, starting with a letter), optionally domain-scoped as example.com:my-project."
  }
}

variable "location" {
  description = "Connection location. It must equal the location of the dataset that holds the object table and the model (for example US, EU or us-central1)."
  type        = string
  nullable    = false
  validation {
    condition     = can(regex("^(US|EU|[a-z]+-[a-z]+[0-9]+)$", var.location))
    error_message = "var.location must be the US or EU multi-region (upper case) or a region name such as us-central1 or europe-west4."
  }
}

variable "connection_id" {
  description = "Connection id: letters, digits, underscores and hyphens, at most 1024 characters."
  type        = string
  nullable    = false
  validation {
    condition     = can(regex("^[a-zA-Z0-9_-]+$", var.connection_id)) && length(var.connection_id) <= 1024
    error_message = "var.connection_id must contain only letters, digits, underscores and hyphens and be 1-1024 characters long."
  }
}

variable "friendly_name" {
  description = "Descriptive name shown in the console."
  type        = string
  default     = null
}

variable "description" {
  description = "Connection description."
  type        = string
  default     = "Cloud resource connection used by BigQuery ML to read images and call Vertex AI. Managed by Terraform."
}

variable "encryption_key" {
  description = "Optional Cloud KMS key (projects/P/locations/L/keyRings/R/cryptoKeys/K) that encrypts the connection's credentials."
  type        = string
  default     = null
  validation {
    condition     = var.encryption_key == null ? true : can(regex("^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$", var.encryption_key))
    error_message = "var.encryption_key must be a full Cloud KMS key id: projects/PROJECT/locations/LOCATION/keyRings/RING/cryptoKeys/KEY."
  }
}

variable "additional_roles" {
  description = "Extra project roles granted (additively) to the connection's service account, on top of roles/aiplatform.user which is always granted. Basic roles (owner, editor, viewer) are refused."
  type        = list(string)
  nullable    = false
  default     = []
  validation {
    condition = alltrue([
      for r in var.additional_roles :
      can(regex("^(roles/[a-zA-Z0-9_.]+|projects/[^/]+/roles/[a-zA-Z0-9_.]+|organizations/[0-9]+/roles/[a-zA-Z0-9_.]+)$", r))
    ])
    error_message = "var.additional_roles: every entry must be a role name such as roles/storage.objectViewer, projects/P/roles/R or organizations/N/roles/R."
  }
  validation {
    condition     = length(setintersection(var.additional_roles, ["roles/owner", "roles/editor", "roles/viewer"])) == 0
    error_message = "var.additional_roles must not contain basic roles (roles/owner, roles/editor, roles/viewer): grant the narrow role the connection needs instead."
  }
}

variable "service_account_wait" {
  description = "How long to wait after the connection (and so its service account) is created before granting the account roles: IAM can refuse an account in the first minutes of its life. A duration such as 120s or 2m; 0s grants at once (apply again if a grant fails)."
  type        = string
  nullable    = false
  default     = "120s"
  validation {
    condition     = can(regex("^[0-9]+(\\.[0-9]+)?(ms|s|m|h)$", var.service_account_wait))
    error_message = "var.service_account_wait must be a number followed by ms, s, m or h, such as 120s or 2m."
  }
}
