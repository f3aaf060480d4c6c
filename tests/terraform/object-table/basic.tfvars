project_id = "my-project"
dataset    = { id = "bqml_tutorial", location = "US" }
table_id   = "images"
connection = {
  id              = "projects/my-project/locations/us/connections/embed_conn"
  location        = "US"
  service_account = "bqcx-123456789012-abcd@gcp-sa-bigquery-condel.iam.gserviceaccount.com"
}
source_uris = ["gs://my-images-bucket/photos/*"]
