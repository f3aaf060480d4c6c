project_id = "my-project"
dataset_id = "bqml_tutorial"
