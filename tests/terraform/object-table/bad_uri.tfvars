# expect-error: var.source_uris: every URI must start with gs://
project_id = "my-project"
dataset    = { id = "bqml_tutorial", location = "US" }
connection = {
  id              = "projects/my-project/locations/us/connections/embed_conn"
  location        = "US"
  service_account = "bqcx-123456789012-abcd@gcp-sa-bigquery-condel.iam.gserviceaccount.com"
}
source_uris = ["https://storage.googleapis.com/my-images-bucket/photos/*"]
