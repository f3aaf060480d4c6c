# expect-error: var.location must be the US or EU multi-region (upper case)
project_id = "my-project"
dataset_id = "bqml_tutorial"
location   = "us"
