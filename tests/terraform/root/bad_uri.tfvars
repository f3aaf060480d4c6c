# expect-error: var.source_uris: every URI must start with gs:// followed by a bucket name and a path
project_id   = "my-project"
object_table = { source_uris = ["/data/photos/*"] }
