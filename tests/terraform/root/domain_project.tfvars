# A domain-scoped project (example.com:my-project) is a valid project id; python -m embed accepts it.
project_id   = "example.com:my-project"
location     = "europe-west4"
object_table = { source_uris = ["gs://my-images-bucket/photos/*"] }
