# expect-error: var.endpoint must be a multimodal embedding endpoint such as multimodalembedding@001
project_id   = "my-project"
object_table = { source_uris = ["gs://my-images-bucket/photos/*"] }
endpoint     = "text-embedding-005"
