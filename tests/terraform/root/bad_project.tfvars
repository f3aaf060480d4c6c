# expect-error: var.project_id must be a project id
project_id   = "My_Project"
object_table = { source_uris = ["gs://my-images-bucket/photos/*"] }
