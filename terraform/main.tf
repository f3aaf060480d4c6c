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
  source           = "../modules/bigquery-connection"
  project_id       = module.project-services.project_id
  location         = var.location
  connection_id    = var.connection_id
  additional_roles = var.connection_additional_roles
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
  source_uris         = var.object_table.source_uris
  metadata_cache      = var.object_table.metadata_cache
  deletion_protection = var.object_table.deletion_protection
  labels              = var.labels
  bucket_create       = var.bucket_create
}
