# The modules validate their inputs; the root stack passes values through, so each rule has
# one definition. Terraform's message then points at the root variable in the module call.
module "project-services" {
  source     = "../modules/project-services"
  project_id = var.project_id
}

# Every module below takes the project id from module.project-services, so
# nothing is created before the APIs are enabled.
module "dataset" {
  source                      = "../modules/bigquery-dataset"
  project_id                  = module.project-services.project_id
  dataset_id                  = var.dataset_id
  location                    = var.location
  labels                      = var.labels
  allow_destroy_with_contents = var.allow_destroy_with_contents
}

module "connection" {
  source     = "../modules/bigquery-connection"
  project_id = module.project-services.project_id
  # The dataset's location: a bad var.location is reported once, by the dataset module.
  location             = module.dataset.location
  connection_id        = var.connection_id
  additional_roles     = var.connection_additional_roles
  service_account_wait = var.connection_service_account_wait
}

module "object-table" {
  source     = "../modules/object-table"
  project_id = module.project-services.project_id
  dataset = {
    id       = module.dataset.dataset_id
    location = module.dataset.location
  }
  table_id = var.object_table.id
  connection = {
    id              = module.connection.id
    location        = module.connection.location
    service_account = module.connection.service_account
  }
  source_uris    = var.object_table.source_uris
  metadata_cache = var.object_table.metadata_cache
  # lookup() rather than the attribute: static checks (checkov's CKV_GCP_121) do not apply
  # optional() defaults, and would read a tfvars object without this key as unprotected.
  deletion_protection = lookup(var.object_table, "deletion_protection", true)
  labels              = var.labels
  bucket_create       = var.bucket_create
}
