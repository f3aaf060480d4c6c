variable "project_id" {
  description = "Project where the APIs are enabled."
  type        = string
  nullable    = false
  validation {
    condition     = can(regex("^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "var.project_id must be a project id (6-30 characters: lowercase letters, digits and hyphens, starting with a letter), optionally domain-scoped as example.com:my-project, not a project name or number."
  }
}

variable "services" {
  description = "APIs to enable. The default is what the stack and the embedding pipeline call: BigQuery, BigQuery Connection, Vertex AI, Cloud Storage, and Cloud Resource Manager (project IAM grants, and the permission checks of `python -m embed doctor`). Enabling them needs the Service Usage API, which must already be on."
  type        = list(string)
  nullable    = false
  default = [
    "bigquery.googleapis.com",
    "bigqueryconnection.googleapis.com",
    "aiplatform.googleapis.com",
    "storage.googleapis.com",
    "cloudresourcemanager.googleapis.com",
  ]
  validation {
    condition     = alltrue([for s in var.services : can(regex("^[a-z][a-z0-9-]*(\\.[a-z0-9-]+)*\\.googleapis\\.com$", s))])
    error_message = "var.services: every entry must be an API service name such as bigquery.googleapis.com."
  }
}

variable "disable_dependent_services" {
  description = "Passed to every service; only matters if a service is ever disabled, which this module never does on destroy (disable_on_destroy is false)."
  type        = bool
  nullable    = false
  default     = false
}
