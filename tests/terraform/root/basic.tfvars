project_id   = "my-project"
object_table = { source_uris = ["gs://my-images-bucket/photos/*"] }
