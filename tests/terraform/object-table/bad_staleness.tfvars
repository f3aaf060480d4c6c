# expect-error: var.metadata_cache.max_staleness_minutes must be a whole number of minutes between 30 and 10080
project_id = "my-project"
dataset    = { id = "bqml_tutorial", location = "US" }
connection = {
  id              = "projects/my-project/locations/us/connections/embed_conn"
  location        = "US"
  service_account = "bqcx-123456789012-abcd@gcp-sa-bigquery-condel.iam.gserviceaccount.com"
}
source_uris    = ["gs://my-images-bucket/photos/*"]
metadata_cache = { enabled = true, max_staleness_minutes = 10 }
