# expect-error: var.dataset_id must contain only letters, digits and underscores
project_id = "my-project"
dataset_id = "bqml-tutorial"
