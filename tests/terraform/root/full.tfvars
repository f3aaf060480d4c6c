project_id    = "my-project"
region        = "europe-west4"
location      = "EU"
dataset_id    = "embeddings_eu"
connection_id = "embed_conn_eu"
object_table = {
  id             = "photos"
  source_uris    = ["gs://my-images-bucket/photos/*"]
  metadata_cache = { enabled = true, max_staleness_minutes = 240, mode = "AUTOMATIC" }
}
bucket_create    = { name = "my-images-bucket" }
model_id         = "mm_embedding"
results_table_id = "photo_embeddings"
labels           = { app = "embed-kit" }
