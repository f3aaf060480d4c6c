# expect-error: var.object_table.source_uris must list at least one Cloud Storage URI, each starting with gs://
project_id   = "my-project"
object_table = { source_uris = ["/data/photos/*"] }
