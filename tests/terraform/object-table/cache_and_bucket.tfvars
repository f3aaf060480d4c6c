project_id = "my-project"
dataset    = { id = "bqml_tutorial", location = "EU" }
table_id   = "images"
connection = {
  id              = "my-project.eu.embed_conn"
  location        = "EU"
  service_account = "bqcx-123456789012-abcd@gcp-sa-bigquery-condel.iam.gserviceaccount.com"
}
source_uris = [
  "gs://my-new-images-bucket/photos/*",
  "gs://my-new-images-bucket/scans/*",
  "gs://shared-images-bucket/*.png",
]
metadata_cache = { enabled = true, max_staleness_minutes = 90, mode = "MANUAL" }
bucket_create  = { name = "my-new-images-bucket", soft_delete_retention_days = 14 }
labels         = { app = "embed-kit" }
