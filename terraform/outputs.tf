output "embed" {
  description = "The contract with the Python layer (python -m embed reads `terraform output -json embed`): project, BigQuery location, dataset, connection (project.location.connection_id) and its service account, fully qualified object table, model and results table (project.dataset.name), and the model endpoint. It is available once the connection's IAM grants exist; IAM can take minutes more to propagate."
  value = {
    project_id                 = module.dataset.project_id
    location                   = module.dataset.location
    dataset_id                 = module.dataset.dataset_id
    connection                 = module.connection.connection
    connection_service_account = module.connection.service_account
    object_table               = module.object-table.table
    model                      = "${module.dataset.project_id}.${module.dataset.dataset_id}.${var.model_id}"
    results_table              = "${module.dataset.project_id}.${module.dataset.dataset_id}.${var.results_table_id}"
    endpoint                   = var.endpoint
  }
}
